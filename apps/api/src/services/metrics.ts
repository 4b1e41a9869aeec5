import type { MetricPoint, ReportMetricsOutput, SeriesPoint } from '@headbench/spec';
import type pg from 'pg';
import type { Principal } from '../auth.js';
import type { LiveHub } from './live.js';
import type { RunService } from './runs.js';

type LivePoint = { name: string; step: number; epoch: number | null; value: number; time: number };

interface PendingBatch {
  runId: string;
  points: MetricPoint[];
  now: number;
  resolve(inserted: LivePoint[]): void;
  reject(e: unknown): void;
}

/**
 * A Postgres array literal of numbers (null → NULL). pg's own conversion quotes and regex-escapes every
 * element, which cost more than the insert itself for large coalesced batches.
 */
function pgArray(xs: (number | null)[]): string {
  let s = '{';
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    if (i) s += ',';
    s += x === null ? 'NULL' : String(x);
  }
  return `${s}}`;
}

/**
 * Coalesces concurrent metric batches into one INSERT: up to `maxInflight` statements run at once, and
 * batches that arrive meanwhile leave together in the next one (one round trip and one commit for many
 * runs). A lone batch goes at once, so light load sees no added latency.
 */
export class IngestQueue {
  private queue: PendingBatch[] = [];
  private inflight = 0;
  constructor(
    private pool: pg.Pool,
    private maxInflight = 4,
    private maxPoints = 20_000,
  ) {}

  /** Stores the points (existing (run, name, step) are skipped) and resolves with the new ones. */
  insert(runId: string, points: MetricPoint[], now: number): Promise<LivePoint[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ runId, points, now, resolve, reject });
      this.pump();
    });
  }

  private pump() {
    while (this.inflight < this.maxInflight && this.queue.length) {
      let n = 0;
      let pts = 0;
      while (n < this.queue.length && (n === 0 || pts + this.queue[n].points.length <= this.maxPoints)) {
        pts += this.queue[n].points.length;
        n++;
      }
      const items = this.queue.splice(0, n);
      this.inflight++;
      this.flush(items, pts)
        .catch((e) => {
          for (const it of items) it.reject(e);
        })
        .finally(() => {
          this.inflight--;
          this.pump();
        });
    }
  }

  private async flush(items: PendingBatch[], total: number) {
    // What goes to Postgres is kept small (sending it was the largest single cost): runs and names as
    // indexes into short dictionaries, times as offsets from the earliest one.
    const runs: string[] = [];
    const names: string[] = [];
    const nameAt = new Map<string, number>();
    const runIdx = new Array<number>(total);
    const nameIdx = new Array<number>(total);
    const steps = new Array<number>(total);
    const epochs = new Array<number | null>(total);
    const values = new Array<number>(total);
    const times = new Array<number>(total);
    let base = Number.POSITIVE_INFINITY;
    let k = 0;
    for (const it of items) {
      let r = runs.indexOf(it.runId) + 1;
      if (!r) r = runs.push(it.runId);
      for (const p of it.points) {
        let n = nameAt.get(p.name);
        if (n === undefined) {
          n = names.push(p.name);
          nameAt.set(p.name, n);
        }
        runIdx[k] = r;
        nameIdx[k] = n;
        steps[k] = p.step;
        epochs[k] = p.epoch ?? null;
        values[k] = p.value;
        const t = p.time ?? it.now;
        times[k] = t;
        if (t < base) base = t;
        k++;
      }
    }
    for (let i = 0; i < total; i++) times[i] -= base;
    // ON CONFLICT DO NOTHING on (run, name, step): a resent batch stores nothing twice. Only a count comes
    // back when everything was new (the common case); otherwise also the keys of the new points, as only
    // those go to dashboards.
    const { rows } = await this.pool.query<{ n: number; fresh: string[] | null }>(
      `WITH ins AS (
         INSERT INTO metrics (run_id, name, step, epoch, value, time)
         SELECT ($1::uuid[])[ri], ($2::text[])[ni], step, epoch, value, to_timestamp(($3::float8 + dt) / 1000.0)
         FROM unnest($4::int[], $5::int[], $6::int[], $7::int[], $8::float8[], $9::float8[])
           AS u(ri, ni, step, epoch, value, dt)
         ON CONFLICT DO NOTHING
         RETURNING run_id, name, step
       )
       SELECT count(*)::int AS n,
              CASE WHEN count(*) < $10 THEN array_agg(run_id::text || '|' || name || '|' || step) END AS fresh
       FROM ins`,
      [
        runs,
        names,
        base,
        pgArray(runIdx),
        pgArray(nameIdx),
        pgArray(steps),
        pgArray(epochs),
        pgArray(values),
        pgArray(times),
        total,
      ],
    );
    const live = (it: PendingBatch, p: MetricPoint): LivePoint => ({
      name: p.name,
      step: p.step,
      epoch: p.epoch ?? null,
      value: p.value,
      time: p.time ?? it.now,
    });
    if (rows[0].n === total) {
      // The common case: everything was new.
      for (const it of items) it.resolve(it.points.map((p) => live(it, p)));
      return;
    }
    const fresh = new Set<string>(rows[0].fresh ?? []);
    for (const it of items) {
      const out: LivePoint[] = [];
      for (const p of it.points) {
        const key = `${it.runId.toLowerCase()}|${p.name}|${p.step}`; // Postgres prints uuids in lower case
        if (fresh.delete(key)) out.push(live(it, p)); // the first batch carrying a point owns it
      }
      it.resolve(out);
    }
  }
}

/** Metric ingest (idempotent, coalesced INSERTs) and reads (downsampled series, cross-run comparison). */
export class MetricService {
  private ingest: IngestQueue;
  constructor(
    private pool: pg.Pool,
    private runs: RunService,
    private hub: LiveHub,
    ingestPool: pg.Pool = pool,
  ) {
    this.ingest = new IngestQueue(ingestPool);
  }

  async report(
    p: Principal,
    runId: string,
    leaseId: string,
    points: MetricPoint[],
  ): Promise<ReportMetricsOutput> {
    const held = await this.runs.assertHolderCached(p, runId, leaseId);
    const inserted = await this.ingest.insert(runId, points, Date.now());
    this.hub.metrics(runId, held.sweep_id, inserted);
    return { inserted: inserted.length, duplicates: points.length - inserted.length, cancel: false };
  }

  /**
   * Series of one run, at most `maxPoints` per name: long series are cut into equal step ranges and each
   * range reports its mean (with min/max/n), at the range's last step.
   */
  async series(runId: string, opts: { names?: string[]; sinceStep?: number; maxPoints: number }) {
    const { rows } = await this.pool.query<{
      name: string;
      step: number;
      epoch: number | null;
      value: number;
      min: number;
      max: number;
      n: number;
      t: number;
    }>(
      `WITH pts AS (
         SELECT name, step, epoch, value, time FROM metrics
         WHERE run_id = $1 AND ($2::text[] IS NULL OR name = ANY($2)) AND step > $3
       ), bounds AS (
         SELECT name, min(step) AS lo, max(step) AS hi, count(*) AS cnt FROM pts GROUP BY name
       ), b AS (
         SELECT p.*, CASE WHEN bounds.cnt <= $4 THEN p.step
           ELSE floor((p.step - bounds.lo)::float8 * $4 / (bounds.hi - bounds.lo + 1))::int END AS bucket
         FROM pts p JOIN bounds USING (name)
       )
       SELECT name, max(step) AS step, max(epoch) AS epoch, avg(value) AS value, min(value) AS min,
              max(value) AS max, count(*)::int AS n, (extract(epoch FROM max(time)) * 1000)::float8 AS t
       FROM b GROUP BY name, bucket ORDER BY name, step`,
      [runId, opts.names?.length ? opts.names : null, opts.sinceStep ?? -1, opts.maxPoints],
    );
    const series: Record<string, SeriesPoint[]> = {};
    for (const r of rows) {
      const pt: SeriesPoint = { step: r.step, epoch: r.epoch, value: r.value, time: Math.round(r.t) };
      if (r.n > 1) Object.assign(pt, { min: r.min, max: r.max, n: r.n });
      if (!series[r.name]) series[r.name] = [];
      series[r.name].push(pt);
    }
    return series;
  }

  /**
   * One metric across runs, grouped by a config key (e.g. head): per group and step, mean/std over the
   * group's runs, aligned on step. Steps are downsampled to at most maxPoints per group.
   */
  async compare(runIds: string[], metric: string, groupBy: string, maxPoints: number) {
    const { rows } = await this.pool.query<{
      grp: string | null;
      step: number;
      mean: number;
      std: number | null;
      n: number;
    }>(
      `WITH pts AS (
         SELECT r.config #>> $3::text[] AS grp, m.run_id, m.step, m.value
         FROM metrics m JOIN runs r ON r.id = m.run_id
         WHERE m.run_id = ANY($1::uuid[]) AND m.name = $2
       ), per_step AS (
         SELECT grp, step, avg(value) AS mean, stddev_samp(value) AS std, count(DISTINCT run_id)::int AS n
         FROM pts GROUP BY grp, step
       ), bounds AS (SELECT grp, min(step) lo, max(step) hi, count(*) cnt FROM per_step GROUP BY grp)
       SELECT grp, max(step) AS step, avg(mean) AS mean, avg(std) AS std, min(n) AS n FROM (
         SELECT s.*, CASE WHEN b.cnt <= $4 THEN s.step
           ELSE floor((s.step - b.lo)::float8 * $4 / (b.hi - b.lo + 1))::int END AS bucket
         FROM per_step s JOIN bounds b ON b.grp IS NOT DISTINCT FROM s.grp
       ) x GROUP BY grp, bucket ORDER BY grp, step`,
      [runIds, metric, groupBy.split('.'), maxPoints],
    );
    const runsByGroup = await this.pool.query<{ grp: string | null; ids: string[] }>(
      `SELECT config #>> $2::text[] AS grp, array_agg(id ORDER BY id) AS ids FROM runs WHERE id = ANY($1::uuid[]) GROUP BY 1`,
      [runIds, groupBy.split('.')],
    );
    const groups = new Map<
      string,
      {
        key: string;
        runIds: string[];
        points: { step: number; mean: number; std: number | null; n: number }[];
      }
    >();
    for (const g of runsByGroup.rows)
      groups.set(String(g.grp), { key: String(g.grp), runIds: g.ids, points: [] });
    for (const r of rows)
      groups.get(String(r.grp))?.points.push({ step: r.step, mean: r.mean, std: r.std, n: r.n });
    return { metric, groupBy, groups: [...groups.values()] };
  }
}
