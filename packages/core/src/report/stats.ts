import { canonicalJson } from '@headbench/spec';
import type { RunConfig } from '../config.js';
import type { EpochMetrics, ParamCounts, RunResult } from '../results.js';

export { canonicalJson };

/** Mean and spread of one quantity over the seeds of a group. */
export interface SeedStat {
  /** One value per run (seed), in the group's run order. */
  values: number[];
  mean: number;
  /** Sample standard deviation (n − 1); 0 with a single value. */
  std: number;
  n: number;
}

/** A per-epoch curve averaged over seeds; `n[i]` runs reached `epoch[i]`. */
export interface CurveStats {
  epoch: number[];
  mean: number[];
  std: number[];
  n: number[];
}

export const EPOCH_METRICS = [
  'loss',
  'accuracy',
  'val_loss',
  'val_accuracy',
  'lr',
  'images_per_s',
  'time_s',
] as const satisfies readonly (keyof EpochMetrics)[];
export type EpochMetricName = (typeof EPOCH_METRICS)[number];

/** Per-epoch curves: the logged metrics plus `gap` = train accuracy − val accuracy. */
export type CurveName = EpochMetricName | 'gap';

export interface ShiftStat extends SeedStat {
  fraction: number;
  /** Pixels of the first run that measured this fraction (runs of one group share the input size). */
  pixels: number;
}

/** Runs that differ only by seed (or by the fields outside the grouping key). */
export interface RunGroup {
  /** Stable identity of the group: the grouping fields as canonical JSON. */
  key: string;
  /** Short name: the head, plus every other grouping field that differs between groups. */
  label: string;
  /** The grouping fields' values. */
  values: Partial<RunConfig>;
  /** Config of the group's first run (fields outside the key may differ between its runs). */
  config: RunConfig;
  runs: RunResult[];
  seeds: number[];
  curves: Record<CurveName, CurveStats>;
  /** Best val accuracy per run (from the summary, else from the epochs). */
  bestValAccuracy: SeedStat;
  /** 1-based epoch of the best val accuracy per run. */
  bestEpoch: SeedStat;
  /** Train − val accuracy at the last epoch per run. */
  finalGap: SeedStat;
  /** Test accuracy per run that has a summary. */
  testAccuracy: SeedStat;
  /** Test accuracy per input shift, ascending by fraction, over the runs that measured it. */
  shifted: ShiftStat[];
  /** Parameter counts of the first run (identical across seeds of one architecture). */
  params: ParamCounts;
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (Bessel-corrected, as seed spreads are usually reported); 0 for n < 2. */
export function std(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

export function stat(values: number[]): SeedStat {
  return { values, mean: mean(values), std: std(values), n: values.length };
}

/** Every config key used by any run, in first-seen order. */
export function configKeys(results: readonly RunResult[]): (keyof RunConfig)[] {
  const seen = new Set<keyof RunConfig>();
  for (const r of results) for (const k of Object.keys(r.config) as (keyof RunConfig)[]) seen.add(k);
  return [...seen];
}

/** Config keys whose values are not all equal across `results`. */
export function varyingKeys(results: readonly RunResult[], keys = configKeys(results)): (keyof RunConfig)[] {
  return keys.filter((k) => new Set(results.map((r) => canonicalJson(r.config[k]))).size > 1);
}

function curve(runs: readonly RunResult[], pick: (e: EpochMetrics) => number): CurveStats {
  const byEpoch = new Map<number, number[]>();
  for (const r of runs) {
    for (const e of r.epochs) {
      const v = pick(e);
      if (!Number.isFinite(v)) continue;
      const list = byEpoch.get(e.epoch);
      if (list) list.push(v);
      else byEpoch.set(e.epoch, [v]);
    }
  }
  const epochs = [...byEpoch.keys()].sort((a, b) => a - b);
  return {
    epoch: epochs,
    mean: epochs.map((e) => mean(byEpoch.get(e)!)),
    std: epochs.map((e) => std(byEpoch.get(e)!)),
    n: epochs.map((e) => byEpoch.get(e)!.length),
  };
}

/** Best val accuracy and its 1-based epoch: the summary's when present, else the first maximum in the log. */
function best(run: RunResult): { acc: number; epoch: number } | undefined {
  if (run.summary) return { acc: run.summary.best_val_accuracy, epoch: run.summary.best_epoch };
  let found: { acc: number; epoch: number } | undefined;
  for (const e of run.epochs) {
    if (Number.isFinite(e.val_accuracy) && (!found || e.val_accuracy > found.acc))
      found = { acc: e.val_accuracy, epoch: e.epoch };
  }
  return found;
}

function finalGap(run: RunResult): number | undefined {
  if (run.summary) return run.summary.final_gap;
  const last = run.epochs.at(-1);
  return last ? last.accuracy - last.val_accuracy : undefined;
}

function shiftStats(runs: readonly RunResult[]): ShiftStat[] {
  const byFraction = new Map<string, { fraction: number; pixels: number; values: number[] }>();
  for (const r of runs) {
    for (const s of r.summary?.shifted ?? []) {
      // Fractions like 1/16 come from float arithmetic; match them up to rounding.
      const k = s.fraction.toFixed(9);
      const entry = byFraction.get(k);
      if (entry) entry.values.push(s.accuracy);
      else byFraction.set(k, { fraction: s.fraction, pixels: s.pixels, values: [s.accuracy] });
    }
  }
  return [...byFraction.values()]
    .sort((a, b) => a.fraction - b.fraction)
    .map((e) => ({ ...stat(e.values), fraction: e.fraction, pixels: e.pixels }));
}

function labelPart(key: keyof RunConfig, group: { runs: RunResult[]; values: Partial<RunConfig> }): string {
  const v = group.values[key];
  if (key === 'head' || key === 'backbone') return String(v);
  if (key === 'dataset') return group.runs[0].dataset?.name || String(v);
  const text = v === undefined ? 'default' : typeof v === 'object' ? canonicalJson(v) : String(v);
  return `${key}=${text}`;
}

const DEFAULT_EXCLUDED: ReadonlySet<keyof RunConfig> = new Set(['seed']);

/**
 * Group runs that differ only by seed (default key: every config field but `seed`; pass `by` to group
 * on chosen fields only). Failed runs are left out: their curves stop at an error, not at convergence.
 * Curves are aligned by epoch number, so runs of different lengths (early stopping) average over the
 * runs that reached each epoch. Groups keep the order in which their first run appears.
 */
export function groupRuns(results: RunResult[], by?: (keyof RunConfig)[]): RunGroup[] {
  const runs = results.filter((r) => r.status !== 'failed');
  const keys = by ?? configKeys(runs).filter((k) => !DEFAULT_EXCLUDED.has(k));
  const buckets = new Map<string, RunResult[]>();
  for (const r of runs) {
    const key = canonicalJson(Object.fromEntries(keys.map((k) => [k, r.config[k]])));
    const list = buckets.get(key);
    if (list) list.push(r);
    else buckets.set(key, [r]);
  }

  const raw = [...buckets.entries()].map(([key, members]) => ({
    key,
    runs: members,
    values: Object.fromEntries(
      keys.filter((k) => members[0].config[k] !== undefined).map((k) => [k, members[0].config[k]]),
    ) as Partial<RunConfig>,
  }));

  // Label with what tells groups apart: head always (when grouped on), backbone first when it varies.
  const differing = new Set(
    varyingKeys(
      raw.map((g) => g.runs[0]),
      keys,
    ),
  );
  const order: (keyof RunConfig)[] = [
    ...(['dataset', 'backbone', 'head'] as const).filter((k) => keys.includes(k)),
    ...keys.filter((k) => k !== 'dataset' && k !== 'backbone' && k !== 'head'),
  ];
  const labelKeys = order.filter((k) => differing.has(k) || k === 'head');

  return raw.map((g) => {
    const bests = g.runs.map(best);
    const gaps = g.runs.map(finalGap);
    const parts = labelKeys.map((k) => labelPart(k, g));
    return {
      key: g.key,
      label: parts.length > 0 ? parts.join(' ') : 'all runs',
      values: g.values,
      config: g.runs[0].config,
      runs: g.runs,
      seeds: g.runs.map((r) => r.config.seed),
      curves: {
        loss: curve(g.runs, (e) => e.loss),
        accuracy: curve(g.runs, (e) => e.accuracy),
        val_loss: curve(g.runs, (e) => e.val_loss),
        val_accuracy: curve(g.runs, (e) => e.val_accuracy),
        lr: curve(g.runs, (e) => e.lr),
        images_per_s: curve(g.runs, (e) => e.images_per_s),
        time_s: curve(g.runs, (e) => e.time_s),
        gap: curve(g.runs, (e) => e.accuracy - e.val_accuracy),
      },
      bestValAccuracy: stat(bests.filter((b) => b !== undefined).map((b) => b.acc)),
      bestEpoch: stat(bests.filter((b) => b !== undefined).map((b) => b.epoch)),
      finalGap: stat(gaps.filter((x): x is number => x !== undefined)),
      testAccuracy: stat(g.runs.filter((r) => r.summary).map((r) => r.summary!.test_accuracy)),
      shifted: shiftStats(g.runs),
      params: g.runs[0].params,
    };
  });
}
