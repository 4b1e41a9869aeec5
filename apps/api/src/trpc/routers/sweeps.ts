import { apiContract } from '@headbench/spec';
import { procedure } from '../init.js';

const c = apiContract.sweeps;

export const sweepsRouter = {
  create: procedure(c.create).mutation(({ ctx, input }) =>
    ctx.services.sweeps.create(input, ctx.principal.userId),
  ),
  list: procedure(c.list).query(({ ctx, input }) => ctx.services.sweeps.list(input)),
  get: procedure(c.get).query(({ ctx, input }) => ctx.services.sweeps.get(input.id)),
  cancel: procedure(c.cancel).mutation(({ ctx, input }) => ctx.services.sweeps.cancel(input.id)),
  rerun: procedure(c.rerun).mutation(({ ctx, input }) =>
    ctx.services.sweeps.rerun(input.id, input.mode, ctx.principal.userId),
  ),
};
