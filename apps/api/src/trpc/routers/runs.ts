import { apiContract } from '@headbench/spec';
import { procedure } from '../init.js';

const c = apiContract.runs;

export const runsRouter = {
  list: procedure(c.list).query(({ ctx, input }) => ctx.services.runRecords.list(input)),
  get: procedure(c.get).query(({ ctx, input }) => ctx.services.runRecords.get(input.id)),
  metrics: procedure(c.metrics).query(({ ctx, input }) => ctx.services.metrics.series(input.runId, input)),
  compare: procedure(c.compare).query(async ({ ctx, input }) => {
    const runIds = input.runIds ?? (await ctx.services.runRecords.idsOf(input.sweepId!));
    return ctx.services.metrics.compare(runIds, input.metric, input.groupBy, input.maxPoints);
  }),
  cancel: procedure(c.cancel).mutation(async ({ ctx, input }) => {
    await ctx.services.sweeps.assertMayChange(ctx.principal, { runId: input.id });
    return ctx.services.runs.cancelRun(input.id, `canceled by ${ctx.principal.name}`);
  }),
  retry: procedure(c.retry).mutation(async ({ ctx, input }) => {
    await ctx.services.sweeps.assertMayChange(ctx.principal, { runId: input.id });
    return ctx.services.runs.retryRun(input.id);
  }),
};
