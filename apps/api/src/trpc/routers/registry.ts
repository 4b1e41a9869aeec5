// Trainers, datasets, artifacts and tokens as people manage them.
import { apiContract as c } from '@headbench/spec';
import { TRPCError } from '@trpc/server';
import { procedure } from '../init.js';

export const trainersRouter = {
  list: procedure(c.trainers.list).query(({ ctx }) => ctx.services.trainers.list()),
};

export const datasetsRouter = {
  register: procedure(c.datasets.register).mutation(({ ctx, input }) =>
    ctx.services.datasets.register(input),
  ),
  list: procedure(c.datasets.list).query(({ ctx }) => ctx.services.datasets.list()),
};

export const artifactsRouter = {
  list: procedure(c.artifacts.list).query(({ ctx, input }) =>
    ctx.services.artifacts.list(input.runId, input.kind),
  ),
  download: procedure(c.artifacts.download).query(async ({ ctx, input }) => {
    const a = await ctx.services.artifacts.get(input.id);
    if (!a) throw new TRPCError({ code: 'NOT_FOUND', message: `no artifact ${input.id}` });
    return {
      id: a.id,
      name: a.name,
      size: Number(a.size),
      sha256: a.sha256,
      path: `/artifacts/${a.id}/content`,
    };
  }),
};

export const tokensRouter = {
  create: procedure(c.tokens.create).mutation(({ ctx, input }) =>
    ctx.services.tokens.create(input, ctx.principal.userId),
  ),
  list: procedure(c.tokens.list).query(({ ctx }) => ctx.services.tokens.list()),
  revoke: procedure(c.tokens.revoke).mutation(({ ctx, input }) => ctx.services.tokens.revoke(input.id)),
};
