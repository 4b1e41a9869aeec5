// Series math for the dashboard: merging live points, per-run lines, EMA smoothing, grouping with ±std bands.
// Pure and browser-safe: no imports from @headbench/core at runtime (it pulls tfjs and sharp).

/** One stored metric point, as the API's runs.metrics and live updates send it. */
export interface Point {
  step: number;
  epoch: number | null;
  value: number;
  time: number;
}
/** Metric name → points sorted by step. */
export type SeriesMap = Record<string, Point[]>;
export type XMode = 'epoch' | 'step' | 'time';

export interface RunLike {
  id: string;
  config: Record<string, unknown>;
  status?: string;
}

/** A line of one run: x ascending, y same length. */
export interface Line {
  x: number[];
  y: number[];
}

/**
 * Merges `incoming` into `existing` (both sorted by step or not): one point per step, the incoming one
 * wins. Returns the same array when nothing changed. Appends in O(k) in the common live case.
 */
export function mergePoints(existing: Point[], incoming: readonly Point[]): Point[] {
  if (incoming.length === 0) return existing;
  const last = existing.length ? existing[existing.length - 1].step : -Infinity;
  let sortedTail = true;
  let prev = last;
  for (const p of incoming) {
    if (p.step <= prev) {
      sortedTail = false;
      break;
    }
    prev = p.step;
  }
  if (sortedTail) return existing.concat(incoming);
  const byStep = new Map<number, Point>();
  for (const p of existing) byStep.set(p.step, p);
  for (const p of incoming) byStep.set(p.step, p);
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/**
 * Highest step stored for a run over all its series (-1 when none): the `sinceStep` to resume from. With
 * `names`, over those series, and -1 when one of them has no point.
 */
export function lastStep(series: SeriesMap | undefined, names?: readonly string[]): number {
  if (!series) return -1;
  let min = Infinity;
  let any = false;
  if (names) {
    // A named series with no point yet may have points on the server: fetch it whole.
    for (const name of names) {
      const pts = series[name];
      if (!pts?.length) return -1;
      min = Math.min(min, pts[pts.length - 1].step);
    }
    return names.length ? min : -1;
  }
  for (const pts of Object.values(series)) {
    if (!pts.length) continue;
    any = true;
    min = Math.min(min, pts[pts.length - 1].step);
  }
  // The lowest of the per-name maxima: every series is complete up to it, so refetching from there misses
  // nothing (duplicates merge away).
  return any ? min : -1;
}

/**
 * Where a resync reads each run's points from after live updates were down: what the page held when they
 * stopped. Live points of the new subscription can reach the page before the resync's read and raise the
 * held step past the points missed meanwhile, which would then never be fetched. `mark` before each
 * (re)subscribe keeps the lower of a new and an uncleared earlier mark; `clear(token)` after a resync
 * that read from `token`'s marks succeeded (a newer mark stays).
 */
export class ResyncMarks {
  private marks: Map<string, number> | null = null;

  mark(held: ReadonlyMap<string, number>): void {
    const next = new Map<string, number>();
    for (const [run, step] of held) next.set(run, Math.min(step, this.marks?.get(run) ?? step));
    this.marks = next;
  }

  /** The step to read run's points after: the lower of what it holds now and its mark. */
  since(run: string, held: number): number {
    return Math.min(held, this.marks?.get(run) ?? held);
  }

  /** The marks a resync starting now reads from (pass to `clear`). */
  token(): object | null {
    return this.marks;
  }

  clear(token: object | null): void {
    if (token !== null && this.marks === token) this.marks = null;
  }
}

function xOf(p: Point, mode: XMode, t0: number): number {
  if (mode === 'epoch') return p.epoch ?? p.step;
  if (mode === 'step') return p.step;
  return (p.time - t0) / 1000;
}

function firstTime(series: SeriesMap): number {
  let t0 = Infinity;
  for (const pts of Object.values(series)) if (pts.length && pts[0].time < t0) t0 = pts[0].time;
  return Number.isFinite(t0) ? t0 : 0;
}

/** Metrics the charts know, plus `gap` = accuracy − val_accuracy (train−val gap, an overfitting signal). */
export const CHART_METRICS = ['val_accuracy', 'val_loss', 'accuracy', 'loss', 'gap'] as const;
export type ChartMetric = (typeof CHART_METRICS)[number] | (string & {});
export const METRIC_TITLES: Record<string, string> = {
  val_accuracy: 'Validation accuracy',
  val_loss: 'Validation loss',
  accuracy: 'Train accuracy',
  loss: 'Train loss',
  gap: 'Train − val accuracy gap',
};

/**
 * The line of one metric of one run. In `step` mode train metrics use the per-batch series
 * (`batch/loss`) when the run logged them. `gap` pairs accuracy and val_accuracy of the same step.
 */
export function runLine(series: SeriesMap | undefined, metric: string, mode: XMode): Line {
  if (!series) return { x: [], y: [] };
  const t0 = firstTime(series);
  if (metric === 'gap') {
    const train = series.accuracy ?? [];
    const val = new Map((series.val_accuracy ?? []).map((p) => [p.step, p]));
    const x: number[] = [];
    const y: number[] = [];
    for (const p of train) {
      const v = val.get(p.step);
      if (!v) continue;
      x.push(xOf(p, mode, t0));
      y.push(p.value - v.value);
    }
    return { x, y };
  }
  const name = mode === 'step' && series[`batch/${metric}`]?.length ? `batch/${metric}` : metric;
  const pts = series[name] ?? [];
  const x = new Array<number>(pts.length);
  const y = new Array<number>(pts.length);
  for (let i = 0; i < pts.length; i++) {
    x[i] = xOf(pts[i], mode, t0);
    y[i] = pts[i].value;
  }
  return { x, y };
}

/**
 * Exponential moving average with TensorBoard's debiasing (the first points are not pulled towards 0).
 * weight 0 returns the input; 0.9 is heavy smoothing.
 */
export function ema(values: readonly number[], weight: number): number[] {
  if (!(weight > 0)) return values.slice();
  const w = Math.min(weight, 0.999);
  const out = new Array<number>(values.length);
  let acc = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    acc = acc * w + (1 - w) * v;
    n++;
    out[i] = acc / (1 - w ** n);
  }
  return out;
}

/** A config value by dotted path (`earlyStopping.monitor`). */
export function configValue(config: Record<string, unknown>, path: string): unknown {
  let v: unknown = config;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

export function formatValue(v: unknown): string {
  if (v === undefined || v === null) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Config keys (top level) whose values differ between runs, in first-seen order. */
export function differingKeys(configs: readonly Record<string, unknown>[]): string[] {
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const c of configs)
    for (const k of Object.keys(c))
      if (!seen.has(k)) {
        seen.add(k);
        keys.push(k);
      }
  return keys.filter((k) => new Set(configs.map((c) => JSON.stringify(c[k] ?? null))).size > 1);
}

/** Every top-level config key with scalar values, for the group / colour / style pickers. */
export function scalarKeys(configs: readonly Record<string, unknown>[]): string[] {
  const keys = new Set<string>();
  for (const c of configs)
    for (const [k, v] of Object.entries(c)) if (v === null || typeof v !== 'object') keys.add(k);
  return [...keys];
}

export interface BandPoint {
  mean: number;
  std: number;
  n: number;
}

/** Mean and sample std (n − 1; 0 for one value) of finite values. */
export function band(values: readonly number[]): BandPoint {
  let n = 0;
  let s = 0;
  for (const v of values)
    if (Number.isFinite(v)) {
      n++;
      s += v;
    }
  if (n === 0) return { mean: Number.NaN, std: Number.NaN, n: 0 };
  const mean = s / n;
  let ss = 0;
  for (const v of values) if (Number.isFinite(v)) ss += (v - mean) ** 2;
  return { mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : 0, n };
}

export interface GroupLine {
  key: string;
  runIds: string[];
  x: number[];
  mean: number[];
  std: number[];
  n: number[];
}

/**
 * Groups run lines by a config key and averages them on their shared x values (epochs/steps): each x
 * averages the runs that reached it, so shorter runs (early stopping, still running) do not drop a group.
 */
export function groupLines(lines: readonly { run: RunLike; line: Line }[], groupKey: string): GroupLine[] {
  const groups = new Map<string, { runIds: string[]; byX: Map<number, number[]> }>();
  for (const { run, line } of lines) {
    const key = formatValue(configValue(run.config, groupKey));
    let g = groups.get(key);
    if (!g) {
      g = { runIds: [], byX: new Map() };
      groups.set(key, g);
    }
    g.runIds.push(run.id);
    for (let i = 0; i < line.x.length; i++) {
      const list = g.byX.get(line.x[i]);
      if (list) list.push(line.y[i]);
      else g.byX.set(line.x[i], [line.y[i]]);
    }
  }
  return [...groups].map(([key, g]) => {
    const xs = [...g.byX.keys()].sort((a, b) => a - b);
    const stats = xs.map((x) => band(g.byX.get(x)!));
    return {
      key,
      runIds: g.runIds,
      x: xs,
      mean: stats.map((s) => s.mean),
      std: stats.map((s) => s.std),
      n: stats.map((s) => s.n),
    };
  });
}

/**
 * uPlot's column layout: the sorted union of every line's x, then one y column per line with null where
 * a line has no point at that x.
 */
export function alignLines(lines: readonly Line[]): { x: number[]; ys: (number | null)[][] } {
  const set = new Set<number>();
  for (const l of lines) for (const x of l.x) set.add(x);
  const x = [...set].sort((a, b) => a - b);
  const index = new Map<number, number>();
  for (let i = 0; i < x.length; i++) index.set(x[i], i);
  const ys = lines.map((l) => {
    const col = new Array<number | null>(x.length).fill(null);
    for (let i = 0; i < l.x.length; i++) {
      const y = l.y[i];
      col[index.get(l.x[i])!] = Number.isFinite(y) ? y : null;
    }
    return col;
  });
  return { x, ys };
}

/**
 * Tick positions for an axis from min to max, `incr` apart (the spacing uPlot chose). With `integer` (x is
 * an epoch or step count) ticks are whole numbers: the spacing is rounded up to a whole number, so a
 * 5-epoch run is labelled 1, 2, 3 and never 1.5.
 */
export function axisTicks(min: number, max: number, incr: number, integer: boolean): number[] {
  const step = integer ? Math.max(1, Math.ceil(incr - 1e-9)) : incr;
  if (!(step > 0) || !Number.isFinite(min) || !Number.isFinite(max)) return [];
  const out: number[] = [];
  // Multiples of the step, rounded to kill float drift (0.1 * 3 = 0.30000000000000004).
  for (let k = Math.ceil(min / step - 1e-9); k * step <= max + 1e-9 * step && out.length < 1000; k++)
    out.push(Number((k * step).toPrecision(12)));
  return out;
}
