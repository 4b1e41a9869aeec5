import { binomialHalfCdf, studentTQuantile } from './distributions.ts';

/** Mean with its sample standard deviation (n − 1) and a two-sided t-interval. */
export interface MeanInterval {
  n: number;
  mean: number;
  /** Sample standard deviation; 0 for one value, NaN for none. */
  std: number;
  /** Confidence level of [lo, hi], e.g. 0.95. */
  level: number;
  /** Interval bounds; NaN when n < 2 (one value has no spread to build an interval from). */
  lo: number;
  hi: number;
  /** (hi − lo) / 2; NaN when n < 2. */
  halfWidth: number;
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (Bessel-corrected, as seed spreads are reported); 0 for one value. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  if (xs.length < 2) return 0;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) ** 2;
  return Math.sqrt(s / (xs.length - 1));
}

/** Mean of `values` with a two-sided Student t confidence interval (default 95%). */
export function meanInterval(values: readonly number[], level = 0.95): MeanInterval {
  if (!(level > 0 && level < 1)) throw new RangeError(`meanInterval: level must be in (0, 1), got ${level}`);
  const n = values.length;
  const m = mean(values);
  const s = sampleStd(values);
  if (n < 2) return { n, mean: m, std: s, level, lo: Number.NaN, hi: Number.NaN, halfWidth: Number.NaN };
  const half = (studentTQuantile(0.5 + level / 2, n - 1) * s) / Math.sqrt(n);
  return { n, mean: m, std: s, level, lo: m - half, hi: m + half, halfWidth: half };
}

/**
 * Paired difference a − b over the keys (seeds) both have, with its t-interval. Pairing by seed removes
 * what a seed shares between two heads (data order, augmentation, backbone initialisation, split).
 */
export function pairedDifference(
  a: ReadonlyMap<number, number>,
  b: ReadonlyMap<number, number>,
  level = 0.95,
): MeanInterval & { keys: number[] } {
  const keys = [...a.keys()].filter((k) => b.has(k)).sort((x, y) => x - y);
  return {
    ...meanInterval(
      keys.map((k) => a.get(k)! - b.get(k)!),
      level,
    ),
    keys,
  };
}

/**
 * Smallest number of paired samples whose t-interval half-width t(n−1)·s/√n is at most `halfWidth`, given a
 * standard deviation `std` (from the pilot seeds). Infinity when it would take more than `max`.
 */
export function samplesForHalfWidth(std: number, halfWidth: number, level = 0.95, max = 100_000): number {
  if (!(halfWidth > 0)) throw new RangeError(`samplesForHalfWidth: halfWidth must be > 0, got ${halfWidth}`);
  if (!Number.isFinite(std)) return Number.NaN;
  if (std === 0) return 2;
  const q = 0.5 + level / 2;
  // Start from the normal approximation, then step up with the t quantile.
  let n = Math.max(2, Math.ceil(((1.96 * std) / halfWidth) ** 2));
  while (n > 2 && (studentTQuantile(q, n - 2) * std) / Math.sqrt(n - 1) <= halfWidth) n--;
  while ((studentTQuantile(q, n - 1) * std) / Math.sqrt(n) > halfWidth) {
    if (n >= max) return Number.POSITIVE_INFINITY;
    n++;
  }
  return n;
}

/**
 * Exact McNemar test (two-sided): of the n = b + c discordant pairs, b where only A was right and c where only
 * B was, P = min(1, 2 · P(X ≤ min(b, c))) for X ~ Binomial(n, 1/2); 1 when nothing is discordant.
 */
export function mcnemarExact(b: number, c: number): number {
  for (const [name, v] of [
    ['b', b],
    ['c', c],
  ] as const)
    if (!(Number.isInteger(v) && v >= 0))
      throw new RangeError(`mcnemarExact: ${name} must be a count ≥ 0, got ${v}`);
  const n = b + c;
  if (n === 0) return 1;
  return Math.min(1, 2 * binomialHalfCdf(Math.min(b, c), n));
}

/**
 * Holm's step-down adjustment for m tests: sort p ascending, p'(i) = max over j ≤ i of min(1, (m − j + 1)·p(j)).
 * Returns adjusted p-values in the input order. NaN inputs stay NaN and do not count towards m.
 */
export function holmAdjust(pValues: readonly number[]): number[] {
  const order = pValues
    .map((p, i) => ({ p, i }))
    .filter((e) => Number.isFinite(e.p))
    .sort((x, y) => x.p - y.p);
  const m = order.length;
  const out = pValues.map(() => Number.NaN);
  let running = 0;
  order.forEach((e, j) => {
    running = Math.max(running, Math.min(1, (m - j) * e.p));
    out[e.i] = running;
  });
  return out;
}
