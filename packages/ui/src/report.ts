// The reference experiment's report, computed in the browser from the API's runs and metrics:
// per backbone, one group per head (seeds pooled), mean ± std of best val accuracy and friends, and a verdict.
import { band, configValue, formatValue, type SeriesMap } from './series.ts';

export interface ReportRun {
  id: string;
  config: Record<string, unknown>;
  status: string;
  params?: Record<string, number> | null;
  summary?: Record<string, unknown> | null;
  series?: SeriesMap;
}

export interface Stat {
  values: number[];
  mean: number;
  std: number;
  n: number;
}

export interface ReportGroup {
  /** Config values that define the group (every key but seed). */
  key: string;
  label: string;
  head: string;
  runIds: string[];
  seeds: number[];
  params: { head: number; trainable: number; total: number } | null;
  bestValAccuracy: Stat;
  /** 1-based epoch of the best val accuracy. */
  bestEpoch: Stat;
  finalGap: Stat;
  testAccuracy: Stat;
  /** Test accuracy per input shift fraction, ascending. */
  shifted: ({ fraction: number; pixels: number } & Stat)[];
}

export interface ReportSection {
  /** Backbone (and dataset when several) the section compares heads on. */
  title: string;
  backbone: string;
  groups: ReportGroup[];
  verdict: string;
}

export function stat(values: number[]): Stat {
  const b = band(values);
  return { values, mean: b.mean, std: b.std, n: b.n };
}

/** Best val accuracy and its epoch: the run summary's when the run finished, else the first max in the log. */
export function bestOf(run: ReportRun): { acc: number; epoch: number } | undefined {
  const s = run.summary;
  if (s && typeof s.best_val_accuracy === 'number' && typeof s.best_epoch === 'number')
    return { acc: s.best_val_accuracy, epoch: s.best_epoch };
  let found: { acc: number; epoch: number } | undefined;
  for (const p of run.series?.val_accuracy ?? [])
    if (!found || p.value > found.acc) found = { acc: p.value, epoch: p.epoch ?? p.step };
  return found;
}

export function finalGapOf(run: ReportRun): number | undefined {
  const s = run.summary;
  if (s && typeof s.final_gap === 'number') return s.final_gap;
  const acc = run.series?.accuracy;
  const val = run.series?.val_accuracy;
  if (!acc?.length || !val?.length) return undefined;
  const lastVal = new Map(val.map((p) => [p.step, p.value]));
  for (let i = acc.length - 1; i >= 0; i--) {
    const v = lastVal.get(acc[i].step);
    if (v !== undefined) return acc[i].value - v;
  }
  return undefined;
}

const SEPARATE = ['dataset', 'backbone'];

/** Splits runs into sections (backbone × dataset) and groups each section's runs by every key but seed. */
export function buildReport(runs: readonly ReportRun[]): ReportSection[] {
  const usable = runs.filter((r) => r.status !== 'failed' && r.status !== 'canceled');
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
    return { title, backbone, groups, verdict: verdict(title, groups) };
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
    const bests = members.map(bestOf).filter((b) => b !== undefined);
    const gaps = members.map(finalGapOf).filter((g): g is number => g !== undefined);
    const tests = members
      .map((r) => r.summary?.test_accuracy)
      .filter((v): v is number => typeof v === 'number');
    const shifts = new Map<string, { fraction: number; pixels: number; values: number[] }>();
    for (const r of members) {
      const list = r.summary?.shifted;
      if (!Array.isArray(list)) continue;
      for (const s of list as { fraction: number; pixels: number; accuracy: number }[]) {
        const k = s.fraction.toFixed(9);
        const e = shifts.get(k);
        if (e) e.values.push(s.accuracy);
        else shifts.set(k, { fraction: s.fraction, pixels: s.pixels, values: [s.accuracy] });
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
      bestValAccuracy: stat(bests.map((b) => b.acc)),
      bestEpoch: stat(bests.map((b) => b.epoch)),
      finalGap: stat(gaps),
      testAccuracy: stat(tests),
      shifted: [...shifts.values()]
        .sort((a, b) => a.fraction - b.fraction)
        .map((s) => ({ fraction: s.fraction, pixels: s.pixels, ...stat(s.values) })),
    };
  });
}

const pct = (v: number, d = 1) => `${(100 * v).toFixed(d)}%`;

/**
 * One line per backbone: the head with the best mean best-val-accuracy, and whether its lead over the
 * runner-up exceeds the seed-to-seed spread (largest std of the two). One seed: the spread is unknown.
 */
export function verdict(title: string, groups: readonly ReportGroup[]): string {
  const ranked = groups
    .filter((g) => g.bestValAccuracy.n > 0)
    .sort((a, b) => b.bestValAccuracy.mean - a.bestValAccuracy.mean);
  if (ranked.length === 0) return `${title}: no validation accuracy reported yet.`;
  const [a, b] = ranked;
  if (!b) return `${title}: only ${a.label} has results (best val accuracy ${pct(a.bestValAccuracy.mean)}).`;
  const lead = a.bestValAccuracy.mean - b.bestValAccuracy.mean;
  const spread = Math.max(a.bestValAccuracy.std, b.bestValAccuracy.std);
  const head = `${title}: ${a.label} is best (${pct(a.bestValAccuracy.mean)} best val accuracy), ${(100 * lead).toFixed(1)} points ahead of ${b.label}`;
  if (Math.min(a.bestValAccuracy.n, b.bestValAccuracy.n) < 2)
    return `${head}; one seed only, so the seed-to-seed spread is unknown.`;
  if (lead > spread)
    return `${head}, a lead larger than the seed-to-seed spread (std ${(100 * spread).toFixed(1)} points).`;
  return `${head}, within the seed-to-seed spread (std ${(100 * spread).toFixed(1)} points): not a clear win.`;
}

/** "87.5 ± 1.2" (percent) or "87.5" with one value; "–" with none. */
export function formatPct(s: Stat, digits = 1): string {
  if (s.n === 0) return '–';
  const m = (100 * s.mean).toFixed(digits);
  return s.n > 1 ? `${m} ± ${(100 * s.std).toFixed(digits)}` : m;
}

export function formatNumber(s: Stat, digits = 1): string {
  if (s.n === 0) return '–';
  return s.n > 1 ? `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}` : s.mean.toFixed(digits);
}

export function formatCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** Table rows as shown on the report tab and in the Markdown export. */
export function reportTable(section: ReportSection): { header: string[]; rows: string[][] } {
  const fractions = new Map<string, { fraction: number; pixels: number }>();
  for (const g of section.groups)
    for (const s of g.shifted)
      fractions.set(s.fraction.toFixed(9), { fraction: s.fraction, pixels: s.pixels });
  const cols = [...fractions.entries()].sort((a, b) => a[1].fraction - b[1].fraction);
  const header = ['head', 'params (head / total)', 'best val acc (%)', 'epoch of best', 'final gap (%)'];
  if (cols.length === 0) header.push('test acc (%)');
  for (const [, c] of cols) header.push(`acc @ ${c.pixels}px shift (%)`);
  const rows = section.groups.map((g) => {
    const cells = [
      g.label,
      g.params ? `${formatCount(g.params.head)} / ${formatCount(g.params.total)}` : '–',
      formatPct(g.bestValAccuracy),
      formatNumber(g.bestEpoch),
      formatPct(g.finalGap),
    ];
    if (cols.length === 0) cells.push(formatPct(g.testAccuracy));
    for (const [k] of cols) {
      const s = g.shifted.find((x) => x.fraction.toFixed(9) === k);
      cells.push(s ? formatPct(s) : '–');
    }
    return cells;
  });
  return { header, rows };
}
