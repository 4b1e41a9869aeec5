// Sweeps as people see them: create (through the run queue), list, read, cancel, rerun. Reads use Prisma.
import {
  formatIssues,
  type StatusCounts,
  type SweepDetail,
  type SweepListItem,
  SweepSpec,
  type SweepStatus,
} from '@headbench/spec';
import { TRPCError } from '@trpc/server';
import type { Principal } from '../auth.js';
import type { Prisma } from '../db/database.js';
import type { RunService } from './runs.js';

const iso = (d: Date) => d.toISOString();

export class SweepService {
  constructor(
    private prisma: Prisma,
    private runs: RunService,
  ) {}

  async create(spec: SweepSpec, creatorId: string) {
    const { id, runIds } = await this.runs.createSweep(spec, creatorId);
    return { id, runs: runIds.length, runIds };
  }

  async list(opts: { status?: SweepStatus; limit: number }): Promise<SweepListItem[]> {
    const sweeps = await this.prisma.sweep.findMany({
      where: opts.status ? { status: opts.status } : {},
      orderBy: { createdAt: 'desc' },
      take: opts.limit,
      include: { creator: { select: { name: true } } },
    });
    const counts = await this.statusCounts(sweeps.map((s) => s.id));
    return sweeps.map((s) => ({
      id: s.id,
      name: s.name,
      status: s.status,
      createdAt: iso(s.createdAt),
      parentId: s.parentId,
      creatorId: s.creatorId,
      creator: s.creator?.name ?? null,
      runs: counts.get(s.id) ?? {},
    }));
  }

  async get(id: string): Promise<SweepDetail> {
    const s = await this.prisma.sweep.findUnique({
      where: { id },
      include: { creator: { select: { name: true } } },
    });
    if (!s) throw new TRPCError({ code: 'NOT_FOUND', message: `no sweep ${id}` });
    const counts = await this.statusCounts([s.id]);
    return {
      id: s.id,
      name: s.name,
      status: s.status,
      spec: s.spec as SweepSpec,
      creatorId: s.creatorId,
      creator: s.creator?.name ?? null,
      parentId: s.parentId,
      createdAt: iso(s.createdAt),
      runs: counts.get(s.id) ?? {},
    };
  }

  /**
   * Members cancel and retry the runs of their own sweeps; another member's sweep needs an admin (a member
   * token must not be able to stop the whole team's work). 404 for an unknown sweep or run.
   */
  async assertMayChange(p: Principal, target: { sweepId: string } | { runId: string }) {
    let sweep: { id: string; creatorId: string | null; creator: { name: string } | null } | null;
    if ('runId' in target) {
      const run = await this.prisma.run.findUnique({
        where: { id: target.runId },
        select: { sweep: { select: { id: true, creatorId: true, creator: { select: { name: true } } } } },
      });
      if (!run) throw new TRPCError({ code: 'NOT_FOUND', message: `no run ${target.runId}` });
      sweep = run.sweep;
    } else {
      sweep = await this.prisma.sweep.findUnique({
        where: { id: target.sweepId },
        select: { id: true, creatorId: true, creator: { select: { name: true } } },
      });
      if (!sweep) throw new TRPCError({ code: 'NOT_FOUND', message: `no sweep ${target.sweepId}` });
    }
    if (p.role === 'admin' || (sweep?.creatorId != null && sweep.creatorId === p.userId)) return;
    throw new TRPCError({
      code: 'FORBIDDEN',
      message: `${sweep ? `sweep ${sweep.id} belongs to ${sweep.creator?.name ?? 'a deleted user'}` : 'the run belongs to no sweep'}; only its creator or an admin may cancel or retry its runs`,
    });
  }

  cancel(id: string) {
    return this.runs.cancelSweep(id);
  }

  /** `failed`: requeue the sweep's failed and canceled runs in place; `all`: a new sweep with the same spec. */
  async rerun(id: string, mode: 'failed' | 'all', userId: string) {
    const s = await this.prisma.sweep.findUnique({ where: { id } });
    if (!s) throw new TRPCError({ code: 'NOT_FOUND', message: `no sweep ${id}` });
    if (mode === 'all') {
      const parsed = SweepSpec.safeParse(s.spec);
      if (!parsed.success)
        throw new TRPCError({
          code: 'BAD_REQUEST',
          message: `sweep ${s.id}'s stored spec breaks today's rules: ${formatIssues(parsed.error.issues).join('; ')}`,
        });
      const created = await this.runs.createSweep(parsed.data, userId, s.id);
      return { sweepId: created.id, requeued: created.runIds.length };
    }
    const runs = await this.prisma.run.findMany({
      where: { sweepId: s.id, status: { in: ['failed', 'canceled'] } },
      select: { id: true },
    });
    for (const r of runs) await this.runs.retryRun(r.id);
    return { sweepId: s.id, requeued: runs.length };
  }

  private async statusCounts(sweepIds: string[]): Promise<Map<string, StatusCounts>> {
    const rows = await this.prisma.run.groupBy({
      by: ['sweepId', 'status'],
      where: { sweepId: { in: sweepIds } },
      _count: { _all: true },
    });
    const out = new Map<string, StatusCounts>();
    for (const r of rows) {
      const m = out.get(r.sweepId!) ?? {};
      m[r.status] = r._count._all;
      out.set(r.sweepId!, m);
    }
    return out;
  }
}
