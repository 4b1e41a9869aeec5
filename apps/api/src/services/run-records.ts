// Runs as people browse them (lists, filters, one run with its events and artifacts). Reads use Prisma;
// state changes go through RunService (the queue).
import type { RunDetail, RunRecord, RunStatus } from '@headbench/spec';
import { TRPCError } from '@trpc/server';
import type { Prisma } from '../db/database.js';
import type { ArtifactService } from './artifacts.js';

type RunRow = Awaited<ReturnType<Prisma['run']['findFirstOrThrow']>>;
const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export const toRunRecord = (r: RunRow): RunRecord => ({
  id: r.id,
  sweepId: r.sweepId,
  index: r.index,
  config: r.config as Record<string, unknown>,
  status: r.status,
  attempt: r.attempt,
  maxAttempts: r.maxAttempts,
  trainerId: r.trainerId,
  leaseExpiresAt: iso(r.leaseExpiresAt),
  checkpointEpoch: r.checkpointEpoch,
  checkpointArtifactId: r.checkpointArtifactId,
  createdAt: r.createdAt.toISOString(),
  startedAt: iso(r.startedAt),
  finishedAt: iso(r.finishedAt),
  summary: (r.summary ?? null) as RunRecord['summary'],
  params: (r.params ?? null) as RunRecord['params'],
  timings: (r.timings ?? null) as RunRecord['timings'],
  backend: r.backend,
  error: r.error,
});

export class RunRecords {
  constructor(
    private prisma: Prisma,
    private artifacts: ArtifactService,
  ) {}

  async list(opts: {
    sweepId?: string;
    status?: RunStatus;
    config?: Record<string, string | number | boolean>;
    limit: number;
    offset: number;
  }): Promise<RunRecord[]> {
    const rows = await this.prisma.run.findMany({
      where: {
        ...(opts.sweepId ? { sweepId: opts.sweepId } : {}),
        ...(opts.status ? { status: opts.status } : {}),
        AND: Object.entries(opts.config ?? {}).map(([k, v]) => ({ config: { path: [k], equals: v } })),
      },
      orderBy: [{ createdAt: 'asc' }, { index: 'asc' }],
      take: opts.limit,
      skip: opts.offset,
    });
    return rows.map(toRunRecord);
  }

  async get(id: string): Promise<RunDetail> {
    const r = await this.prisma.run.findUnique({
      where: { id },
      include: { events: { orderBy: { at: 'asc' }, take: 500 } },
    });
    if (!r) throw new TRPCError({ code: 'NOT_FOUND', message: `no run ${id}` });
    return {
      ...toRunRecord(r),
      events: r.events.map((e) => ({
        type: e.type,
        attempt: e.attempt,
        data: e.data as Record<string, unknown> | null,
        at: e.at.toISOString(),
      })),
      artifacts: await this.artifacts.list(r.id),
    };
  }

  /** The ids of a sweep's runs. */
  async idsOf(sweepId: string): Promise<string[]> {
    return (await this.prisma.run.findMany({ where: { sweepId }, select: { id: true } })).map((r) => r.id);
  }
}
