import { apiContract } from '@headbench/spec';
import { procedure } from '../init.js';

const c = apiContract.sweeps;

export const sweepsRouter = {
  create: procedure(c.create).mutation(({ ctx, input }) =>
    ctx.services.sweeps.create(input, ctx.principal.userId),
  ),
  list: procedure(c.list).query(({ ctx, input }) => ctx.services.sweeps.list(input)),
  get: procedure(c.get).query(({ ctx, input }) => ctx.services.sweeps.get(input.id)),
  cancel: procedure(c.cancel).mutation(async ({ ctx, input }) => {
    await ctx.services.sweeps.assertMayChange(ctx.principal, { sweepId: input.id });
    return ctx.services.sweeps.cancel(input.id);
  }),
  // `all` starts a new sweep of the caller's (anyone may copy a sweep); `failed` requeues runs in place.
  rerun: procedure(c.rerun).mutation(async ({ ctx, input }) => {
    if (input.mode === 'failed')
      await ctx.services.sweeps.assertMayChange(ctx.principal, { sweepId: input.id });
    return ctx.services.sweeps.rerun(input.id, input.mode, ctx.principal.userId);
  }),
};
