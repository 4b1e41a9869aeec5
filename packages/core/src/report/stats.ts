import {
  canonicalJson,
  compareHeads,
  type HeadComparison,
  type MeanInterval,
  mean,
  meanInterval,
  sampleStd,
} from '@headbench/spec';
import type { RunConfig } from '../config.js';
import type { EpochMetrics, ParamCounts, RunResult } from '../results.js';

export { canonicalJson };

/** One quantity over the seeds of a group: mean, sample std and 95% t-interval (spec's statistics). */
export type SeedStat = MeanInterval & {
  /** One value per run (seed), in the group's run order. */
  values: number[];
};

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

export type ShiftStat = SeedStat & {
  fraction: number;
  /** Pixels of the first run that measured this fraction (runs of one group share the input size). */
  pixels: number;
  /** Share of shifted predictions equal to the unshifted crop's, over the same runs. */
  consistency: SeedStat;
};

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
  /** Epoch validation selected, per finished run. */
  selectedEpoch: SeedStat;
  /** Validation accuracy at the selected epoch. */
  valAccuracy: SeedStat;
  /** Test accuracy at the selected epoch, per finished run: what the tables and verdicts report. */
  testAccuracy: SeedStat;
  /** Test accuracy at the last epoch. */
  testAccuracyLast: SeedStat;
  /** Training-sample accuracy (inference mode) minus test accuracy, at the selected epoch. */
  gap: SeedStat;
  /** Test accuracy per input shift, ascending by fraction, over the runs that measured it. */
  shifted: ShiftStat[];
  /** Parameter counts of the first run (identical across seeds of one architecture). */
  params: ParamCounts;
}

export function stat(values: number[]): SeedStat {
  return { values, ...meanInterval(values) };
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
    std: epochs.map((e) => sampleStd(byEpoch.get(e)!)),
    n: epochs.map((e) => byEpoch.get(e)!.length),
  };
}

function shiftStats(runs: readonly RunResult[]): ShiftStat[] {
  const byFraction = new Map<
    string,
    { fraction: number; pixels: number; values: number[]; same: number[] }
  >();
  for (const r of runs) {
    for (const s of r.summary?.shifted ?? []) {
      // Fractions like 1/16 come from float arithmetic; match them up to rounding.
      const k = s.fraction.toFixed(9);
      const entry = byFraction.get(k) ?? { fraction: s.fraction, pixels: s.pixels, values: [], same: [] };
      entry.values.push(s.accuracy);
      entry.same.push(s.consistency);
      byFraction.set(k, entry);
    }
  }
  return [...byFraction.values()]
    .sort((a, b) => a.fraction - b.fraction)
    .map((e) => ({ ...stat(e.values), fraction: e.fraction, pixels: e.pixels, consistency: stat(e.same) }));
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
    const done = g.runs.flatMap((r) => (r.summary ? [r.summary] : []));
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
      selectedEpoch: stat(done.map((s) => s.selected_epoch)),
      valAccuracy: stat(done.map((s) => s.val_accuracy)),
      testAccuracy: stat(done.map((s) => s.test_accuracy)),
      testAccuracyLast: stat(done.map((s) => s.test_accuracy_last)),
      gap: stat(done.map((s) => s.gap)),
      shifted: shiftStats(g.runs),
      params: g.runs[0].params,
    };
  });
}

/**
 * The verdict statistics of a section's groups (spec's compareHeads): runs still training (no summary) are
 * left out and counted.
 */
export function compareGroups(groups: readonly RunGroup[]): HeadComparison {
  return compareHeads(
    groups.map((g) => ({
      label: g.label,
      runs: g.runs.map((r) => ({
        seed: r.config.seed,
        testAccuracy: r.summary?.test_accuracy,
        testCorrect: r.summary?.test_correct,
        testCount: r.summary?.test_count,
        splitHash: r.summary?.split_hash,
      })),
    })),
  );
}
