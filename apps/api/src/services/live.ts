import type { LiveUpdate, RunStatus } from '@headbench/spec';
import type { Namespace } from 'socket.io';
import type { ClusterRooms } from '../cluster/rooms.js';

type Point = LiveUpdate['metrics'][number]['points'][number];
interface Pending {
  runs: LiveUpdate['runs'];
  metrics: Map<string, Point[]>;
}

/**
 * Fans status changes and metric points out to socket.io rooms (`run:<id>`, `sweep:<id>`), coalesced per
 * room: the first update of a quiet room goes out at once, later ones within `intervalMs` are merged into
 * one `update` event at the end of the window. Keeps dashboards live without one event per batch.
 */
export class LiveHub {
  live?: Namespace;
  trainers?: Namespace;
  /** Rooms watched on other API instances (their dashboards get this instance's updates too). */
  rooms?: ClusterRooms;
  private pending = new Map<string, Pending>();
  private lastFlush = new Map<string, number>();
  private timers = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(private intervalMs = 100) {}

  runStatus(r: {
    id: string;
    sweepId: string | null;
    status: RunStatus;
    attempt: number;
    error?: string | null;
  }) {
    const ev = {
      runId: r.id,
      sweepId: r.sweepId,
      status: r.status,
      attempt: r.attempt,
      at: new Date().toISOString(),
      ...(r.error ? { error: r.error } : {}),
    };
    for (const room of rooms(r.id, r.sweepId)) {
      if (!this.watched(room)) continue;
      this.slot(room).runs.push(ev);
      this.schedule(room);
    }
  }

  metrics(runId: string, sweepId: string | null, points: Point[]) {
    if (!points.length) return;
    for (const room of rooms(runId, sweepId)) {
      // Nobody watching: nothing to buffer or encode (metric ingest calls this for every batch).
      if (!this.watched(room)) continue;
      const p = this.slot(room);
      const list = p.metrics.get(runId);
      if (list) for (const pt of points) list.push(pt);
      else p.metrics.set(runId, points.slice());
      this.schedule(room);
    }
  }

  private watched(room: string): boolean {
    const members = this.live?.adapter.rooms.get(room);
    return (members !== undefined && members.size > 0) || this.rooms?.has(room) === true;
  }

  toTrainer(trainerId: string, event: 'cancel' | 'work', payload: object) {
    this.trainers?.to(`trainer:${trainerId}`).emit(event, payload);
  }

  workAvailable() {
    this.trainers?.emit('work', {});
  }

  close() {
    this.closed = true;
    this.rooms?.close();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private slot(room: string): Pending {
    let p = this.pending.get(room);
    if (!p) {
      p = { runs: [], metrics: new Map() };
      this.pending.set(room, p);
    }
    return p;
  }

  private schedule(room: string) {
    if (this.closed || this.timers.has(room)) return;
    const wait = Math.max(0, (this.lastFlush.get(room) ?? 0) + this.intervalMs - Date.now());
    if (wait === 0) {
      // Leading edge: defer only to the end of this tick so one request's points go out together.
      this.timers.set(
        room,
        setTimeout(() => this.flush(room), 0),
      );
    } else
      this.timers.set(
        room,
        setTimeout(() => this.flush(room), wait),
      );
  }

  private flush(room: string) {
    this.timers.delete(room);
    const p = this.pending.get(room);
    this.pending.delete(room);
    if (!p) return;
    this.lastFlush.set(room, Date.now());
    if (this.lastFlush.size > 10_000) this.pruneLastFlush();
    const update: LiveUpdate = {
      room,
      runs: p.runs,
      metrics: [...p.metrics].map(([runId, points]) => ({ runId, points })),
    };
    this.live?.to(room).emit('update', update);
  }

  private pruneLastFlush() {
    const cutoff = Date.now() - this.intervalMs;
    for (const [room, t] of this.lastFlush) if (t < cutoff) this.lastFlush.delete(room);
  }
}

function rooms(runId: string, sweepId: string | null) {
  return sweepId ? [`run:${runId}`, `sweep:${sweepId}`] : [`run:${runId}`];
}
