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
  cancel: procedure(c.cancel).mutation(({ ctx, input }) => ctx.services.runs.cancelRun(input.id)),
  retry: procedure(c.retry).mutation(({ ctx, input }) => ctx.services.runs.retryRun(input.id)),
};
