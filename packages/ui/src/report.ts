// The study's report, computed in the browser from the API's runs: per backbone (and dataset), one group per
// head (seeds pooled), and the statistics and verdict from @headbench/spec — the same code as report.md's.
import {
  type CamFidelity,
  camFidelity,
  compareHeads,
  comparisonTables,
  type HeadComparison,
  type MeanInterval,
  meanInterval,
} from '@headbench/spec';
import { configValue, formatValue, type SeriesMap } from './series.ts';

export interface ReportRun {
  id: string;
  config: Record<string, unknown>;
  status: string;
  params?: Record<string, number> | null;
  summary?: Record<string, unknown> | null;
  series?: SeriesMap;
}

/** One quantity over the seeds of a group, with its 95% t-interval. */
export type Stat = MeanInterval & { values: number[] };

export interface ReportGroup {
  /** Config values that define the group (every key but seed). */
  key: string;
  label: string;
  head: string;
  runIds: string[];
  seeds: number[];
  params: { head: number; trainable: number; total: number } | null;
  /** Over finished runs: the epoch validation selected, val and test accuracy there, the last epoch's test accuracy. */
  selectedEpoch: Stat;
  valAccuracy: Stat;
  testAccuracy: Stat;
  testAccuracyLast: Stat;
  /** Training-sample accuracy (inference mode) − test accuracy at the selected epoch. */
  gap: Stat;
  /** Accuracy and consistency with the unshifted crop per shift fraction, ascending. */
  shifted: ({ fraction: number; pixels: number; consistency: Stat } & Stat)[];
  camFidelity: CamFidelity;
}

export interface ReportSection {
  /** Backbone (and dataset when several) the section compares heads on. */
  title: string;
  backbone: string;
  groups: ReportGroup[];
  comparison: HeadComparison;
  /** Runs still training, left out of the statistics. */
  pending: number;
}

function stat(values: number[]): Stat {
  return { values, ...meanInterval(values) };
}

const num = (s: Record<string, unknown> | null | undefined, k: string) =>
  s && typeof s[k] === 'number' ? (s[k] as number) : undefined;
const str = (s: Record<string, unknown> | null | undefined, k: string) =>
  s && typeof s[k] === 'string' ? (s[k] as string) : undefined;

/** A run's summary fields the statistics read; absent (still training) when it has no test accuracy. */
function finished(r: ReportRun) {
  return r.status === 'succeeded' && num(r.summary, 'test_accuracy') !== undefined;
}

/** The epoch validation selected and its val accuracy: the summary's once finished, else the best so far. */
export function selectedOf(run: ReportRun): { acc: number; epoch: number } | undefined {
  const acc = num(run.summary, 'val_accuracy');
  const epoch = num(run.summary, 'selected_epoch');
  if (acc !== undefined && epoch !== undefined) return { acc, epoch };
  let found: { acc: number; epoch: number } | undefined;
  for (const p of run.series?.val_accuracy ?? [])
    if (!found || p.value > found.acc) found = { acc: p.value, epoch: p.epoch ?? p.step };
  return found;
}

const SEPARATE = ['dataset', 'backbone'];

/**
 * Splits runs into sections (backbone × dataset) and groups each section's runs by every key but seed. Failed,
 * canceled and queued runs are left out; running runs count as pending until they report their summary.
 */
export function buildReport(runs: readonly ReportRun[]): ReportSection[] {
  const usable = runs.filter((r) => r.status === 'succeeded' || r.status === 'running');
  const datasets = new Set(usable.map((r) => formatValue(r.config.dataset)));
  const sections = new Map<string, ReportRun[]>();
  for (const r of usable) {
    const k = SEPARATE.map((s) => formatValue(r.config[s])).join('\u0000');
    const list = sections.get(k);
    if (list) list.push(r);
    else sections.set(k, [r]);
  }
  return [...sections.values()].map((members) => {
    const backbone = formatValue(members[0].config.backbone);
    const title = datasets.size > 1 ? `${backbone} on ${formatValue(members[0].config.dataset)}` : backbone;
    const groups = groupSection(members);
    const byId = new Map(members.map((r) => [r.id, r]));
    const comparison = compareHeads(
      groups.map((g) => ({
        label: g.label,
        runs: g.runIds.map((id) => {
          const r = byId.get(id)!;
          const s = finished(r) ? r.summary : undefined;
          return {
            seed: Number(r.config.seed),
            testAccuracy: num(s, 'test_accuracy'),
            testCorrect: str(s, 'test_correct'),
            testCount: num(s, 'test_count'),
            splitHash: str(s, 'split_hash'),
          };
        }),
      })),
    );
    return { title, backbone, groups, comparison, pending: comparison.pending };
  });
}

function groupSection(runs: ReportRun[]): ReportGroup[] {
  const keyOf = (r: ReportRun) =>
    JSON.stringify(
      Object.keys(r.config)
        .filter((k) => k !== 'seed')
        .sort()
        .map((k) => [k, r.config[k]]),
    );
  const buckets = new Map<string, ReportRun[]>();
  for (const r of runs) {
    const k = keyOf(r);
    const list = buckets.get(k);
    if (list) list.push(r);
    else buckets.set(k, [r]);
  }
  // Label: the head, plus whatever else tells this section's groups apart (lr, optimizer...).
  const firsts = [...buckets.values()].map((g) => g[0].config);
  const extra = new Set<string>();
  for (const c of firsts)
    for (const k of Object.keys(c))
      if (k !== 'seed' && k !== 'head' && !SEPARATE.includes(k))
        if (new Set(firsts.map((f) => JSON.stringify(f[k] ?? null))).size > 1) extra.add(k);
  return [...buckets.entries()].map(([key, members]) => {
    const head = formatValue(members[0].config.head);
    const done = members.filter(finished).map((r) => r.summary!);
    const pick = (k: string) => stat(done.flatMap((s) => (typeof s[k] === 'number' ? [s[k] as number] : [])));
    const shifts = new Map<string, { fraction: number; pixels: number; values: number[]; same: number[] }>();
    for (const s of done) {
      const list = s.shifted;
      if (!Array.isArray(list)) continue;
      for (const x of list as { fraction: number; pixels: number; accuracy: number; consistency: number }[]) {
        const k = x.fraction.toFixed(9);
        const e = shifts.get(k) ?? { fraction: x.fraction, pixels: x.pixels, values: [], same: [] };
        e.values.push(x.accuracy);
        e.same.push(x.consistency);
        shifts.set(k, e);
      }
    }
    const p = members.find((r) => r.params)?.params;
    return {
      key,
      label: [head, ...[...extra].map((k) => `${k}=${formatValue(configValue(members[0].config, k))}`)].join(
        ' ',
      ),
      head,
      runIds: members.map((r) => r.id),
      seeds: members.map((r) => Number(r.config.seed)),
      params: p ? { head: p.head ?? 0, trainable: p.trainable ?? 0, total: p.total ?? 0 } : null,
      selectedEpoch: pick('selected_epoch'),
      valAccuracy: pick('val_accuracy'),
      testAccuracy: pick('test_accuracy'),
      testAccuracyLast: pick('test_accuracy_last'),
      gap: pick('gap'),
      shifted: [...shifts.values()]
        .sort((a, b) => a.fraction - b.fraction)
        .map((s) => ({
          fraction: s.fraction,
          pixels: s.pixels,
          ...stat(s.values),
          consistency: stat(s.same),
        })),
      camFidelity: camFidelity(head),
    };
  });
}

/** "45.2 (41.0..49.4)" in percent; the mean alone for one seed; "–" with none. */
export function formatWithInterval(s: Stat, digits = 1): string {
  if (s.n === 0) return '–';
  const m = (100 * s.mean).toFixed(digits);
  return Number.isFinite(s.lo)
    ? `${m} (${(100 * s.lo).toFixed(digits)}..${(100 * s.hi).toFixed(digits)})`
    : m;
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

type Table = { header: string[]; rows: string[][] };

/** The section's tables as shown on the report tab and in the Markdown export: heads, pairs, details. */
export function reportTables(section: ReportSection): { heads: Table; pairs: Table; details: Table } {
  const { heads, pairs } = comparisonTables(section.comparison);
  const details: Table = {
    header: [
      'head',
      'params (head / total)',
      'selected epoch (mean)',
      'val acc @ selected (%)',
      'test acc @ last epoch (%)',
      'train − test gap (points)',
      'CAM',
    ],
    rows: section.groups.map((g) => [
      g.label,
      g.params ? `${formatCount(g.params.head)} / ${formatCount(g.params.total)}` : '–',
      g.selectedEpoch.n > 0 ? g.selectedEpoch.mean.toFixed(1) : '–',
      formatWithInterval(g.valAccuracy),
      formatWithInterval(g.testAccuracyLast),
      formatWithInterval(g.gap),
      g.camFidelity,
    ]),
  };
  return { heads, pairs, details };
}
