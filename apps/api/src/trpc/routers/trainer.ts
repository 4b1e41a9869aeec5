// The trainer protocol (see @headbench/spec protocol.ts): what trainer processes call.
import { Readable } from 'node:stream';
import { apiContract } from '@headbench/spec';
import { procedure } from '../init.js';

const c = apiContract.trainer;

export const trainerRouter = {
  register: procedure(c.register).mutation(({ ctx, input }) =>
    ctx.services.runs.register(ctx.principal, input),
  ),
  lease: procedure(c.lease).mutation(({ ctx, input }) => ctx.services.runs.lease(ctx.principal, input)),
  heartbeat: procedure(c.heartbeat).mutation(({ ctx, input }) =>
    ctx.services.runs.heartbeat(ctx.principal, input),
  ),
  reportMetrics: procedure(c.reportMetrics).mutation(({ ctx, input }) =>
    ctx.services.metrics.report(ctx.principal, input.runId, input.leaseId, input.points),
  ),
  complete: procedure(c.complete).mutation(({ ctx, input }) =>
    ctx.services.runs.complete(ctx.principal, input),
  ),
  fail: procedure(c.fail).mutation(({ ctx, input }) => ctx.services.runs.fail(ctx.principal, input)),
  release: procedure(c.release).mutation(({ ctx, input }) => ctx.services.runs.release(ctx.principal, input)),
  uploadArtifact: procedure(c.uploadArtifact).mutation(({ ctx, input }) => {
    const { contentBase64, ...meta } = input;
    return ctx.services.artifacts.upload(
      ctx.principal,
      meta,
      Readable.from([Buffer.from(contentBase64, 'base64')]),
    );
  }),
};
