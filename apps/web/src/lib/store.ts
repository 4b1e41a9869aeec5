'use client';
import type { LiveUpdate } from '@headbench/spec';
import { lastStep, mergePoints, ResyncMarks, type SeriesMap } from '@headbench/ui';
import { useCallback, useEffect, useRef, useState } from 'react';
import { browserApi } from './browser';
import type { Run } from './types';

/** Fetches with at most `n` requests in flight. */
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>) {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]);
    }),
  );
}

/**
 * Runs and their series, kept in refs (100 runs × 500 epochs would be slow to copy on every update);
 * `version` bumps at most once per animation frame so charts redraw once per batch of live points.
 */
export function useRunStore(initialRuns: Run[], opts: { sweepId?: string; names?: string[] }) {
  const runs = useRef(new Map(initialRuns.map((r) => [r.id, r])));
  const series = useRef(new Map<string, SeriesMap>());
  const [version, setVersion] = useState(0);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);
  const frame = useRef<number | null>(null);
  const refreshTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const bump = useCallback(() => {
    if (frame.current !== null) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = null;
      setVersion((v) => v + 1);
    });
  }, []);

  const merge = useCallback((runId: string, name: string, pts: SeriesMap[string]) => {
    const m = series.current.get(runId) ?? {};
    m[name] = mergePoints(m[name] ?? [], pts);
    series.current.set(runId, m);
  }, []);

  // Where a resync reads from: what each run held when live updates stopped (see ResyncMarks).
  const marks = useRef(new ResyncMarks());

  /** Fetches each run's points after what we already hold (all of them on first load). */
  const fetchMetrics = useCallback(
    async (ids: string[]) => {
      await pool(ids, 6, async (runId) => {
        const since = marks.current.since(runId, sinceStepOf(series.current.get(runId), opts.names));
        const got = await browserApi().runs.metrics.query({
          runId,
          sinceStep: since,
          maxPoints: 5000,
          ...(opts.names ? { names: opts.names } : {}),
        });
        for (const [name, pts] of Object.entries(got))
          merge(
            runId,
            name,
            pts.map((p) => ({ step: p.step, epoch: p.epoch, value: p.value, time: p.time })),
          );
      });
      bump();
    },
    [bump, merge, opts.names],
  );

  // Every list request gets a number; a response older than one already applied is dropped, so a slow
  // request issued before a run completed cannot overwrite the completed row (params, summary) with a stale one.
  const issued = useRef(0);
  const applied = useRef(0);
  const retries = useRef(0);
  const scheduleRefreshRef = useRef<(delay?: number) => void>(() => {});
  const refreshRuns = useCallback(async () => {
    if (!opts.sweepId) return;
    const seq = ++issued.current;
    const list = await browserApi().runs.list.query({ sweepId: opts.sweepId, limit: 1000 });
    if (seq < applied.current) return;
    applied.current = seq;
    const fresh = list.filter((r) => !runs.current.has(r.id)).map((r) => r.id);
    let behind = false;
    const next = new Map<string, Run>();
    for (const r of list) {
      const local = runs.current.get(r.id);
      // The live stream already said this attempt ended, but the row read does not show it yet: keep the
      // newer status and read again.
      if (local && TERMINAL.has(local.status) && !TERMINAL.has(r.status) && local.attempt >= r.attempt) {
        next.set(r.id, { ...r, status: local.status });
        behind = true;
      } else next.set(r.id, r);
      if (r.status === 'succeeded' && !r.params) behind = true;
    }
    runs.current = next;
    bump();
    if (behind && retries.current < 5) {
      retries.current++;
      scheduleRefreshRef.current(1000);
    } else if (!behind) retries.current = 0;
    if (fresh.length) await fetchMetrics(fresh);
  }, [bump, fetchMetrics, opts.sweepId]);

  const scheduleRefresh = useCallback(
    (delay = 400) => {
      if (refreshTimer.current) return;
      refreshTimer.current = setTimeout(() => {
        refreshTimer.current = null;
        // A failed read (API restarting) is retried rather than leaving rows stale.
        void refreshRuns().catch(() => scheduleRefreshRef.current(2000));
      }, delay);
    },
    [refreshRuns],
  );
  scheduleRefreshRef.current = scheduleRefresh;

  const initial = useRef<Promise<unknown>>(Promise.resolve());
  const loaded = useRef(false);
  useEffect(() => {
    let cancelled = false;
    const load = fetchMetrics([...runs.current.keys()]);
    initial.current = load.catch(() => {});
    load
      .then(() => {
        loaded.current = true;
      })
      .catch((e) => !cancelled && setError(e instanceof Error ? e.message : String(e)))
      .finally(() => !cancelled && setLoading(false));
    return () => {
      cancelled = true;
    };
  }, [fetchMetrics]);

  const onUpdate = useCallback(
    (u: LiveUpdate) => {
      for (const m of u.metrics)
        for (const [name, pts] of groupByName(m.points))
          if (!opts.names || opts.names.includes(name)) merge(m.runId, name, pts);
      let unknown = false;
      for (const s of u.runs) {
        const r = runs.current.get(s.runId);
        if (r)
          runs.current.set(s.runId, {
            ...r,
            status: s.status,
            attempt: s.attempt,
            error: s.error ?? r.error,
          });
        else unknown = true;
      }
      // Status changes carry no trainer, params or summary: fetch the rows again (debounced).
      if (u.runs.length || unknown) {
        retries.current = 0;
        scheduleRefresh();
      }
      bump();
    },
    [bump, merge, scheduleRefresh, opts.names],
  );

  /**
   * After (re)subscribing: rows and points that changed while no live updates arrived. A failed read (the
   * network just came back, the API is restarting) retries the whole resync: retrying only the rows would
   * leave the missed points out for good, since live updates only carry new ones.
   */
  const resyncTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  /**
   * Before a (re)subscribe: mark what each run holds. Before the first load completes there is nothing to
   * mark: the load itself reads what the subscription does not bring.
   */
  const onSubscribing = useCallback(() => {
    if (!loaded.current) return;
    const held = new Map<string, number>();
    for (const id of runs.current.keys()) held.set(id, sinceStepOf(series.current.get(id), opts.names));
    marks.current.mark(held);
  }, [opts.names]);
  const onResync = useCallback(() => {
    if (resyncTimer.current) clearTimeout(resyncTimer.current);
    resyncTimer.current = null;
    const attempt = (delay: number) => {
      // After the first load, so `sinceStep` starts from what it fetched.
      const token = marks.current.token();
      void initial.current
        .then(refreshRuns)
        .then(() => fetchMetrics([...runs.current.keys()]))
        .then(() => marks.current.clear(token))
        .catch(() => {
          resyncTimer.current = setTimeout(() => attempt(Math.min(delay * 2, 10_000)), delay);
        });
    };
    attempt(1000);
  }, [fetchMetrics, refreshRuns]);
  useEffect(
    () => () => {
      if (resyncTimer.current) clearTimeout(resyncTimer.current);
    },
    [],
  );

  return { runs, series, version, loading, error, onUpdate, onSubscribing, onResync, refreshRuns };
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);

/**
 * Where a refetch resumes. Epoch metrics (step = epoch) and batch metrics (step = global step) share one
 * step column on different scales, so without a name list the epoch metric `loss` bounds it; a run that has
 * no `loss` point yet (still in its first epoch) is fetched whole.
 */
function sinceStepOf(series: SeriesMap | undefined, names: string[] | undefined): number {
  if (names) return lastStep(series, names);
  return Math.min(lastStep(series), lastStep(series, ['loss']));
}

function groupByName(points: LiveUpdate['metrics'][number]['points']) {
  const out = new Map<string, { step: number; epoch: number | null; value: number; time: number }[]>();
  for (const p of points) {
    const list = out.get(p.name);
    const q = { step: p.step, epoch: p.epoch, value: p.value, time: p.time };
    if (list) list.push(q);
    else out.set(p.name, [q]);
  }
  for (const list of out.values()) list.sort((a, b) => a.step - b.step);
  return out;
}
