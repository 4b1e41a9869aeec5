// The trainers page: who is registered, what they run. Reads use Prisma.
import type { TrainerInfo } from '@headbench/spec';
import type { Prisma } from '../db/database.js';

export class TrainerDirectory {
  constructor(private prisma: Prisma) {}

  async list(): Promise<TrainerInfo[]> {
    const rows = await this.prisma.trainer.findMany({
      orderBy: { name: 'asc' },
      include: { runs: { where: { status: 'running' }, select: { id: true } } },
    });
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      host: r.host,
      backend: r.backend,
      devices: (r.devices ?? []) as TrainerInfo['devices'],
      slots: r.slots,
      capabilities: (r.capabilities ?? null) as TrainerInfo['capabilities'],
      state: r.state,
      lastHeartbeat: r.lastHeartbeat?.toISOString() ?? null,
      runningRunIds: r.runs.map((x) => x.id),
    }));
  }
}
