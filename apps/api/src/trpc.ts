import { Readable } from 'node:stream';
import {
  ARTIFACT_KINDS,
  BACKBONE_NAMES,
  BACKBONES,
  BACKEND_NAMES,
  CompleteInput,
  DATASET_FORMATS,
  FailInput,
  formatIssues,
  HEAD_NAMES,
  HeartbeatInput,
  LeaseInput,
  MAX_LISTED_ISSUES,
  OPTIMIZER_NAMES,
  POOLING_NAMES,
  RegisterInput,
  ReleaseInput,
  ReportMetricsInput,
  RUN_STATUSES,
  SweepSpec,
  UploadArtifactInput,
} from '@headbench/spec';
import { initTRPC, TRPCError } from '@trpc/server';
import { z } from 'zod';
import { hashToken, newTokenSecret, type Principal, type TokenAuth } from './auth.js';
import type { Database } from './db/database.js';
import type { ArtifactService } from './services/artifacts.js';
import type { DatasetService } from './services/datasets.js';
import type { MetricService } from './services/metrics.js';
import type { RunService } from './services/runs.js';

export interface Services {
  db: Database;
  auth: TokenAuth;
  runs: RunService;
  metrics: MetricService;
  artifacts: ArtifactService;
  datasets: DatasetService;
}
export interface Context {
  principal: Principal | null;
  services: Services;
}

const t = initTRPC.context<Context>().create({
  errorFormatter({ shape, error }) {
    // Validation errors name every offending field: "size: inceptionv3 needs inputs of at least 75x75 pixels".
    const cause = error.cause as { issues?: { path: PropertyKey[]; message: string }[] } | undefined;
    const all = error.code === 'BAD_REQUEST' && Array.isArray(cause?.issues) ? cause.issues : undefined;
    return {
      ...shape,
      message: all ? formatIssues(all).join('; ') : shape.message,
      data: {
        ...shape.data,
        stack: undefined,
        issues: all
          ?.slice(0, MAX_LISTED_ISSUES)
          .map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
      },
    };
  },
});

const authed = t.procedure.use(({ ctx, next }) => {
  if (!ctx.principal) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'missing or invalid token' });
  return next({ ctx: { ...ctx, principal: ctx.principal } });
});
/** People (admin, member). Trainer tokens get 403: they only lease and report. */
const user = authed.use(({ ctx, next }) => {
  if (ctx.principal.role === 'trainer')
    throw new TRPCError({ code: 'FORBIDDEN', message: 'trainer tokens cannot do this' });
  return next();
});
const admin = authed.use(({ ctx, next }) => {
  if (ctx.principal.role !== 'admin') throw new TRPCError({ code: 'FORBIDDEN', message: 'admin only' });
  return next();
});
const trainer = authed.use(({ ctx, next }) => {
  if (ctx.principal.role !== 'trainer' && ctx.principal.role !== 'admin') {
    throw new TRPCError({ code: 'FORBIDDEN', message: 'trainer token required' });
  }
  return next();
});

const id = z.object({ id: z.uuid() });
const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const Scalar = z.union([z.string().max(1000), z.number(), z.boolean()]);

type RunRow = {
  id: string;
  sweepId: string | null;
  index: number;
  config: unknown;
  status: string;
  attempt: number;
  maxAttempts: number;
  trainerId: string | null;
  leaseExpiresAt: Date | null;
  checkpointEpoch: number | null;
  checkpointArtifactId: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  summary: unknown;
  params: unknown;
  timings: unknown;
  backend: string | null;
  error: string | null;
};
const toRun = (r: RunRow) => ({
  id: r.id,
  sweepId: r.sweepId,
  index: r.index,
  config: r.config as Record<string, unknown>,
  status: r.status as (typeof RUN_STATUSES)[number],
  attempt: r.attempt,
  maxAttempts: r.maxAttempts,
  trainerId: r.trainerId,
  leaseExpiresAt: iso(r.leaseExpiresAt),
  checkpointEpoch: r.checkpointEpoch,
  checkpointArtifactId: r.checkpointArtifactId,
  createdAt: iso(r.createdAt)!,
  startedAt: iso(r.startedAt),
  finishedAt: iso(r.finishedAt),
  summary: (r.summary ?? null) as Record<string, unknown> | null,
  params: (r.params ?? null) as Record<string, number> | null,
  timings: (r.timings ?? null) as { seconds: number; featureSeconds?: number } | null,
  backend: r.backend,
  error: r.error,
});

type DatasetRow = {
  id: string;
  name: string;
  uri: string;
  contentHash: string | null;
  classes: string[];
  trainCount: number | null;
  testCount: number | null;
  archiveUri: string | null;
  archiveFormat: string | null;
  archiveSha256: string | null;
  archiveSize: bigint | null;
  createdAt: Date;
};
const toDataset = (d: DatasetRow) => ({
  id: d.id,
  name: d.name,
  uri: d.uri,
  contentHash: d.contentHash,
  classes: d.classes,
  trainCount: d.trainCount,
  testCount: d.testCount,
  /** Uploaded archive (PUT /datasets/:name): GET downloadPath with the same token. */
  archive: d.archiveSha256
    ? {
        format: d.archiveFormat as (typeof DATASET_FORMATS)[number],
        sha256: d.archiveSha256,
        size: Number(d.archiveSize),
        downloadPath: `/datasets/${encodeURIComponent(d.name)}/content`,
      }
    : null,
  createdAt: iso(d.createdAt)!,
});

async function statusCounts(ctx: Context, sweepIds: string[]) {
  const rows = await ctx.services.db.prisma.run.groupBy({
    by: ['sweepId', 'status'],
    where: { sweepId: { in: sweepIds } },
    _count: { _all: true },
  });
  const out = new Map<string, Record<string, number>>();
  for (const r of rows) {
    const m = out.get(r.sweepId!) ?? {};
    m[r.status] = r._count._all;
    out.set(r.sweepId!, m);
  }
  return out;
}

export const appRouter = t.router({
  whoami: authed.query(({ ctx }) => ({ role: ctx.principal.role, name: ctx.principal.name })),

  meta: t.router({
    /** Valid names for sweep forms, from @headbench/spec (trainable also takes a block count ≥ 1). */
    names: authed.query(() => ({
      backbones: [...BACKBONE_NAMES],
      /** Per-backbone facts: minimum and default input size, preprocessing, block count, alphas. */
      backboneFacts: BACKBONES,
      heads: [...HEAD_NAMES],
      optimizers: [...OPTIMIZER_NAMES],
      trainable: ['frozen', 'all'] as ('frozen' | 'all')[],
      backends: [...BACKEND_NAMES],
      poolings: [...POOLING_NAMES],
      artifactKinds: [...ARTIFACT_KINDS],
      datasetFormats: [...DATASET_FORMATS],
    })),
  }),

  sweeps: t.router({
    create: user.input(SweepSpec).mutation(async ({ ctx, input }) => {
      const { id: sweepId, runIds } = await ctx.services.runs.createSweep(input, ctx.principal.userId);
      return { id: sweepId, runs: runIds.length, runIds };
    }),
    list: user
      .input(
        z
          .object({
            status: z.enum(['active', 'canceled', 'done']).optional(),
            limit: z.number().int().min(1).max(500).default(50),
          })
          .default({ limit: 50 }),
      )
      .query(async ({ ctx, input }) => {
        const sweeps = await ctx.services.db.prisma.sweep.findMany({
          where: input.status ? { status: input.status } : {},
          orderBy: { createdAt: 'desc' },
          take: input.limit,
          include: { creator: { select: { name: true } } },
        });
        const counts = await statusCounts(
          ctx,
          sweeps.map((s) => s.id),
        );
        return sweeps.map((s) => ({
          id: s.id,
          name: s.name,
          status: s.status,
          createdAt: iso(s.createdAt)!,
          parentId: s.parentId,
          creatorId: s.creatorId,
          /** The creating user's name; null when that user was deleted. */
          creator: s.creator?.name ?? null,
          runs: counts.get(s.id) ?? {},
        }));
      }),
    get: user.input(id).query(async ({ ctx, input }) => {
      const s = await ctx.services.db.prisma.sweep.findUnique({
        where: { id: input.id },
        include: { creator: { select: { name: true } } },
      });
      if (!s) throw new TRPCError({ code: 'NOT_FOUND', message: `no sweep ${input.id}` });
      const counts = await statusCounts(ctx, [s.id]);
      return {
        id: s.id,
        name: s.name,
        status: s.status,
        spec: s.spec as Record<string, unknown>,
        creatorId: s.creatorId,
        creator: s.creator?.name ?? null,
        parentId: s.parentId,
        createdAt: iso(s.createdAt)!,
        runs: counts.get(s.id) ?? {},
      };
    }),
    cancel: user.input(id).mutation(({ ctx, input }) => ctx.services.runs.cancelSweep(input.id)),
    /** `failed`: requeue the sweep's failed and canceled runs in place; `all`: a new sweep with the same spec. */
    rerun: user
      .input(z.object({ id: z.uuid(), mode: z.enum(['failed', 'all']).default('all') }))
      .mutation(async ({ ctx, input }) => {
        const s = await ctx.services.db.prisma.sweep.findUnique({ where: { id: input.id } });
        if (!s) throw new TRPCError({ code: 'NOT_FOUND', message: `no sweep ${input.id}` });
        if (input.mode === 'all') {
          const parsed = SweepSpec.safeParse(s.spec);
          if (!parsed.success)
            throw new TRPCError({
              code: 'BAD_REQUEST',
              message: `sweep ${s.id}'s stored spec breaks today's rules: ${formatIssues(parsed.error.issues).join('; ')}`,
            });
          const spec = parsed.data;
          const created = await ctx.services.runs.createSweep(spec, ctx.principal.userId, s.id);
          return { sweepId: created.id, requeued: created.runIds.length };
        }
        const runs = await ctx.services.db.prisma.run.findMany({
          where: { sweepId: s.id, status: { in: ['failed', 'canceled'] } },
          select: { id: true },
        });
        for (const r of runs) await ctx.services.runs.retryRun(r.id);
        return { sweepId: s.id, requeued: runs.length };
      }),
  }),

  runs: t.router({
    list: user
      .input(
        z
          .object({
            sweepId: z.uuid().optional(),
            status: z.enum(RUN_STATUSES).optional(),
            /** Config equality filters, e.g. { head: 'gap', backbone: 'vgg16' }. */
            config: z.record(z.string().max(64), Scalar).optional(),
            limit: z.number().int().min(1).max(1000).default(200),
            offset: z.number().int().min(0).default(0),
          })
          .default({ limit: 200, offset: 0 }),
      )
      .query(async ({ ctx, input }) => {
        const rows = await ctx.services.db.prisma.run.findMany({
          where: {
            ...(input.sweepId ? { sweepId: input.sweepId } : {}),
            ...(input.status ? { status: input.status } : {}),
            AND: Object.entries(input.config ?? {}).map(([k, v]) => ({ config: { path: [k], equals: v } })),
          },
          orderBy: [{ createdAt: 'asc' }, { index: 'asc' }],
          take: input.limit,
          skip: input.offset,
        });
        return rows.map(toRun);
      }),
    get: user.input(id).query(async ({ ctx, input }) => {
      const r = await ctx.services.db.prisma.run.findUnique({
        where: { id: input.id },
        include: { events: { orderBy: { at: 'asc' }, take: 500 } },
      });
      if (!r) throw new TRPCError({ code: 'NOT_FOUND', message: `no run ${input.id}` });
      return {
        ...toRun(r),
        events: r.events.map((e) => ({
          type: e.type,
          attempt: e.attempt,
          data: e.data as Record<string, unknown> | null,
          at: iso(e.at)!,
        })),
        artifacts: await ctx.services.artifacts.list(r.id),
      };
    }),
    metrics: user
      .input(
        z.object({
          runId: z.uuid(),
          names: z.array(z.string().max(64)).max(50).optional(),
          /** Only points after this step: reconnecting dashboards fetch what they missed. */
          sinceStep: z.number().int().min(-1).optional(),
          maxPoints: z.number().int().min(2).max(100_000).default(1000),
        }),
      )
      .query(({ ctx, input }) => ctx.services.metrics.series(input.runId, input)),
    compare: user
      .input(
        z
          .object({
            runIds: z.array(z.uuid()).min(1).max(2000).optional(),
            sweepId: z.uuid().optional(),
            metric: z.string().min(1).max(64).default('val_accuracy'),
            /** Config key (dots for nesting), e.g. `head`, `backbone`, `earlyStopping.monitor`. */
            groupBy: z.string().min(1).max(64).default('head'),
            maxPoints: z.number().int().min(2).max(10_000).default(500),
          })
          .refine((v) => v.runIds || v.sweepId, { message: 'give runIds or sweepId', path: ['runIds'] }),
      )
      .query(async ({ ctx, input }) => {
        const runIds =
          input.runIds ??
          (
            await ctx.services.db.prisma.run.findMany({
              where: { sweepId: input.sweepId },
              select: { id: true },
            })
          ).map((r) => r.id);
        return ctx.services.metrics.compare(runIds, input.metric, input.groupBy, input.maxPoints);
      }),
    cancel: user.input(id).mutation(({ ctx, input }) => ctx.services.runs.cancelRun(input.id)),
    retry: user.input(id).mutation(({ ctx, input }) => ctx.services.runs.retryRun(input.id)),
  }),

  trainers: t.router({
    list: user.query(async ({ ctx }) => {
      const rows = await ctx.services.db.prisma.trainer.findMany({
        orderBy: { name: 'asc' },
        include: { runs: { where: { status: 'running' }, select: { id: true } } },
      });
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        host: r.host,
        backend: r.backend,
        devices: r.devices,
        slots: r.slots,
        capabilities: r.capabilities,
        state: r.state,
        lastHeartbeat: iso(r.lastHeartbeat),
        runningRunIds: r.runs.map((x) => x.id),
      }));
    }),
  }),

  datasets: t.router({
    register: user
      .input(
        z.object({
          name: z.string().min(1).max(128),
          uri: z.string().min(1).max(2000),
          contentHash: z.string().max(128).optional(),
          classes: z.array(z.string().min(1).max(200)).max(100_000).default([]),
          trainCount: z.number().int().min(0).optional(),
          testCount: z.number().int().min(0).optional(),
        }),
      )
      .mutation(async ({ ctx, input }) => {
        const d = await ctx.services.db.prisma.dataset.upsert({
          where: { name: input.name },
          create: input,
          update: input,
        });
        return toDataset(d);
      }),
    list: user.query(async ({ ctx }) =>
      (await ctx.services.db.prisma.dataset.findMany({ orderBy: { name: 'asc' } })).map(toDataset),
    ),
  }),

  artifacts: t.router({
    list: user
      .input(z.object({ runId: z.uuid(), kind: z.enum(ARTIFACT_KINDS).optional() }))
      .query(({ ctx, input }) => ctx.services.artifacts.list(input.runId, input.kind)),
    /** Where to GET the bytes (same token): the store may later hand out signed URLs instead. */
    download: user.input(id).query(async ({ ctx, input }) => {
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
  }),

  tokens: t.router({
    /** The secret is in this response only; the server keeps its sha256. */
    create: admin
      .input(
        z.object({
          name: z.string().min(1).max(128),
          role: z.enum(['admin', 'member', 'trainer']),
          /** User the token acts for (created if new); default: the caller. */
          user: z.string().min(1).max(128).optional(),
        }),
      )
      .mutation(async ({ ctx, input }) => {
        const prisma = ctx.services.db.prisma;
        const userId = input.user
          ? (
              await prisma.user.upsert({
                where: { name: input.user },
                create: { name: input.user },
                update: {},
              })
            ).id
          : ctx.principal.userId;
        const secret = newTokenSecret();
        const tok = await prisma.token.create({
          data: {
            userId,
            name: input.name,
            role: input.role,
            hash: hashToken(secret),
            prefix: secret.slice(0, 7),
          },
        });
        return { id: tok.id, name: tok.name, role: tok.role, token: secret };
      }),
    list: admin.query(async ({ ctx }) =>
      (
        await ctx.services.db.prisma.token.findMany({
          orderBy: { createdAt: 'asc' },
          include: { user: true },
        })
      ).map((k) => ({
        id: k.id,
        name: k.name,
        role: k.role,
        prefix: k.prefix,
        user: k.user.name,
        createdAt: iso(k.createdAt)!,
        lastUsedAt: iso(k.lastUsedAt),
        revokedAt: iso(k.revokedAt),
      })),
    ),
    revoke: admin.input(id).mutation(async ({ ctx, input }) => {
      const r = await ctx.services.db.prisma.token.updateMany({
        where: { id: input.id, revokedAt: null },
        data: { revokedAt: new Date() },
      });
      ctx.services.auth.forget();
      return { revoked: r.count === 1 };
    }),
  }),

  trainer: t.router({
    register: trainer
      .input(RegisterInput)
      .mutation(({ ctx, input }) => ctx.services.runs.register(ctx.principal, input)),
    lease: trainer
      .input(LeaseInput)
      .mutation(({ ctx, input }) => ctx.services.runs.lease(ctx.principal, input)),
    heartbeat: trainer
      .input(HeartbeatInput)
      .mutation(({ ctx, input }) => ctx.services.runs.heartbeat(ctx.principal, input)),
    reportMetrics: trainer
      .input(ReportMetricsInput)
      .mutation(({ ctx, input }) =>
        ctx.services.metrics.report(ctx.principal, input.runId, input.leaseId, input.points),
      ),
    complete: trainer
      .input(CompleteInput)
      .mutation(({ ctx, input }) => ctx.services.runs.complete(ctx.principal, input)),
    fail: trainer.input(FailInput).mutation(({ ctx, input }) => ctx.services.runs.fail(ctx.principal, input)),
    /** Hand a held run back to the queue without using up an attempt (graceful stop). */
    release: trainer
      .input(ReleaseInput)
      .mutation(({ ctx, input }) => ctx.services.runs.release(ctx.principal, input)),
    uploadArtifact: trainer.input(UploadArtifactInput).mutation(({ ctx, input }) => {
      const { contentBase64, ...meta } = input;
      return ctx.services.artifacts.upload(
        ctx.principal,
        meta,
        Readable.from([Buffer.from(contentBase64, 'base64')]),
      );
    }),
  }),
});

export type AppRouter = typeof appRouter;
