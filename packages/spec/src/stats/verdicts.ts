import { decodeCorrectness, discordantPairs } from './correctness.ts';
import {
  holmAdjust,
  type MeanInterval,
  mcnemarExact,
  meanInterval,
  pairedDifference,
  samplesForHalfWidth,
} from './tests.ts';

/** What a verdict needs from one run (a head × seed). */
export interface VerdictRun {
  seed: number;
  /** Test accuracy in [0, 1] at the validation-selected epoch; absent while the run is still training. */
  testAccuracy?: number;
  /** Per-image correctness on the test set at that epoch (see `encodeCorrectness`). */
  testCorrect?: string;
  /** Number of test images `testCorrect` covers. */
  testCount?: number;
  /** Hash of the split's index lists: per-image pairing needs the same test images. */
  splitHash?: string;
}

export interface VerdictGroup {
  label: string;
  runs: readonly VerdictRun[];
}

export interface HeadStats {
  label: string;
  seeds: number[];
  accuracy: MeanInterval;
}

export interface PairStats {
  /** The head with the higher mean test accuracy. */
  a: string;
  b: string;
  /** a − b paired by seed, in [−1, 1]. */
  difference: MeanInterval & { keys: number[] };
  /** Exact McNemar on per-image correctness pooled over the paired seeds (NaN p when no run recorded it). */
  perImage: { onlyA: number; onlyB: number; images: number; p: number; adjustedP: number };
  /** Paired seeds needed for a ±1 point interval (NaN with fewer than 2 seeds). */
  seedsForOnePoint: number;
  /** `a beats b` only when the interval excludes 0 and the adjusted per-image test is significant. */
  outcome: 'beats' | 'inconclusive' | 'one-seed';
  sentence: string;
}

export interface HeadComparison {
  heads: HeadStats[];
  pairs: PairStats[];
  /** Runs left out because they have no test accuracy yet (still training). */
  pending: number;
  /** One paragraph: the leader against every other head. */
  verdict: string;
}

export interface CompareOptions {
  /** Confidence level of the intervals (default 0.95). */
  level?: number;
  /** Family-wise error rate for the Holm-adjusted per-image tests (default 0.05). */
  alpha?: number;
  /** Interval half-width that the "seeds needed" figure aims at, as a fraction (default 0.01 = 1 point). */
  targetHalfWidth?: number;
}

const points = (v: number) => (100 * v).toFixed(1);

/** Higher mean first; equal means by label, so the order of the groups never changes a table. */
function ahead(a: HeadStats, b: HeadStats): boolean {
  return a.accuracy.mean !== b.accuracy.mean ? a.accuracy.mean > b.accuracy.mean : a.label <= b.label;
}

/** "0.012", "< 0.001", "–" for a p-value. */
export function formatP(p: number): string {
  if (!Number.isFinite(p)) return '–';
  if (p < 0.001) return '< 0.001';
  return p >= 0.1 ? p.toFixed(2) : p.toPrecision(2);
}

/** A fraction's interval in points: "−1.2..3.4"; "–" without one. */
export function formatInterval(s: MeanInterval): string {
  return Number.isFinite(s.lo) ? `${points(s.lo)}..${points(s.hi)}` : '–';
}

/** A fraction's mean in percent/points with one decimal; "–" without values. */
export function formatPoints(v: number): string {
  return Number.isFinite(v) ? points(v) : '–';
}

function seedsPhrase(more: number, target: number): string {
  const t = `±${(100 * target).toFixed(target >= 0.01 ? 0 : 1)} point${target === 0.01 ? '' : 's'}`;
  if (Number.isNaN(more)) return '';
  if (!Number.isFinite(more)) return `; narrowing the interval to ${t} would take more than 100000 seeds`;
  if (more <= 0) return `; the interval is already within ${t}`;
  return `; about ${more} more seed${more === 1 ? '' : 's'} would narrow the interval to ${t}`;
}

/**
 * The study's statistics, once: per head the mean test accuracy with a t-interval over seeds; per pair of
 * heads the paired-by-seed difference with its interval and an exact McNemar test on the shared test images
 * (pooled over seeds), Holm-adjusted across pairs; and the verdict sentences.
 */
export function compareHeads(groups: readonly VerdictGroup[], options: CompareOptions = {}): HeadComparison {
  const level = options.level ?? 0.95;
  const alpha = options.alpha ?? 0.05;
  const target = options.targetHalfWidth ?? 0.01;
  const levelText = `${Math.round(level * 100)}% CI`;
  let pending = 0;
  const finished = groups.map((g) => {
    const runs = g.runs.filter((r) => Number.isFinite(r.testAccuracy));
    pending += g.runs.length - runs.length;
    // One run per seed: a repeated seed would pair twice.
    const bySeed = new Map<number, VerdictRun>();
    for (const r of runs) if (!bySeed.has(r.seed)) bySeed.set(r.seed, r);
    return { label: g.label, bySeed };
  });
  const heads: HeadStats[] = finished.map((g) => {
    const seeds = [...g.bySeed.keys()].sort((a, b) => a - b);
    return {
      label: g.label,
      seeds,
      accuracy: meanInterval(
        seeds.map((s) => g.bySeed.get(s)!.testAccuracy!),
        level,
      ),
    };
  });

  const raw: Omit<PairStats, 'outcome' | 'sentence'>[] = [];
  for (let i = 0; i < finished.length; i++) {
    for (let j = i + 1; j < finished.length; j++) {
      if (heads[i].accuracy.n === 0 || heads[j].accuracy.n === 0) continue;
      const [x, y] = ahead(heads[i], heads[j]) ? [i, j] : [j, i];
      const A = finished[x];
      const B = finished[y];
      const acc = (m: Map<number, VerdictRun>) => new Map([...m].map(([s, r]) => [s, r.testAccuracy!]));
      const difference = pairedDifference(acc(A.bySeed), acc(B.bySeed), level);
      let onlyA = 0;
      let onlyB = 0;
      let images = 0;
      for (const seed of difference.keys) {
        const ra = A.bySeed.get(seed)!;
        const rb = B.bySeed.get(seed)!;
        if (!ra.testCorrect || !rb.testCorrect || ra.testCount === undefined || ra.testCount !== rb.testCount)
          continue;
        if (!ra.splitHash || ra.splitHash !== rb.splitHash) continue;
        const d = discordantPairs(
          decodeCorrectness(ra.testCorrect, ra.testCount),
          decodeCorrectness(rb.testCorrect, rb.testCount!),
        );
        onlyA += d.b;
        onlyB += d.c;
        images += ra.testCount;
      }
      const p = images > 0 ? mcnemarExact(onlyA, onlyB) : Number.NaN;
      const needed = difference.n >= 2 ? samplesForHalfWidth(difference.std, target, level) : Number.NaN;
      raw.push({
        a: A.label,
        b: B.label,
        difference,
        perImage: { onlyA, onlyB, images, p, adjustedP: Number.NaN },
        seedsForOnePoint: needed,
      });
    }
  }
  const adjusted = holmAdjust(raw.map((r) => r.perImage.p));
  const pairs: PairStats[] = raw.map((r, k) => {
    const perImage = { ...r.perImage, adjustedP: adjusted[k] };
    const d = r.difference;
    const shownP = formatP(perImage.adjustedP);
    const pText = `adjusted p ${shownP.startsWith('<') ? shownP : `= ${shownP}`}`;
    if (d.n < 2) {
      return {
        ...r,
        perImage,
        outcome: 'one-seed',
        sentence: `${r.a} vs ${r.b}: ${d.n === 1 ? 'one seed' : 'no shared seed'} — no interval over seeds (difference ${formatPoints(d.mean)} points, per-image ${pText}); run more seeds.`,
      };
    }
    const stats = `${levelText} ${formatInterval(d)}, ${pText}`;
    const more = seedsPhrase(r.seedsForOnePoint - d.n, target);
    const excludesZero = d.lo > 0 || d.hi < 0;
    if (excludesZero && perImage.adjustedP < alpha)
      return {
        ...r,
        perImage,
        outcome: 'beats',
        sentence: `${r.a} beats ${r.b} by ${points(d.mean)} points (${stats})${more}.`,
      };
    const why = excludesZero
      ? `the per-image test is not significant at ${alpha}`
      : 'the interval includes 0';
    return {
      ...r,
      perImage,
      outcome: 'inconclusive',
      sentence: `${r.a} vs ${r.b}: inconclusive — ${why} (${points(d.mean)} points, ${stats})${more}.`,
    };
  });

  const ranked = heads.filter((h) => h.accuracy.n > 0).sort((a, b) => (ahead(a, b) ? -1 : 1));
  let verdict: string;
  const waiting =
    pending > 0
      ? ` ${pending} run${pending === 1 ? '' : 's'} still training ${pending === 1 ? 'is' : 'are'} left out.`
      : '';
  if (ranked.length === 0) verdict = `No finished run yet.${waiting}`;
  else if (ranked.length === 1)
    verdict = `Only ${ranked[0].label} has finished runs (test accuracy ${formatPoints(ranked[0].accuracy.mean)}%); nothing to compare.${waiting}`;
  else {
    const top = ranked[0];
    const mine = pairs.filter((p) => p.a === top.label || p.b === top.label).map((p) => p.sentence);
    const oneSeed =
      Math.min(...ranked.map((h) => h.accuracy.n)) < 2
        ? ' With one seed per head there is no interval over seeds.'
        : '';
    verdict = `Highest mean test accuracy at the selected epoch: ${top.label} (${formatPoints(top.accuracy.mean)}%).${oneSeed} ${mine.join(' ')}${waiting}`;
  }
  return { heads, pairs, pending, verdict };
}

/** The head and pairwise tables as text cells, shared by report.md and the dashboard so they cannot differ. */
export function comparisonTables(c: HeadComparison): {
  heads: { header: string[]; rows: string[][] };
  pairs: { header: string[]; rows: string[][] };
} {
  const level = c.heads[0]?.accuracy.level ?? 0.95;
  const ci = `${Math.round(level * 100)}% CI`;
  return {
    heads: {
      header: ['head', 'seeds', 'test acc @ selected epoch (%)', ci],
      rows: c.heads.map((h) => [
        h.label,
        String(h.accuracy.n),
        formatPoints(h.accuracy.mean),
        formatInterval(h.accuracy),
      ]),
    },
    pairs: {
      header: [
        'pair (A − B)',
        'paired seeds',
        'difference (points)',
        ci,
        'only A right / only B right',
        'adjusted p (McNemar, Holm)',
        'verdict',
      ],
      rows: c.pairs.map((p) => [
        `${p.a} − ${p.b}`,
        String(p.difference.n),
        formatPoints(p.difference.mean),
        formatInterval(p.difference),
        p.perImage.images > 0 ? `${p.perImage.onlyA} / ${p.perImage.onlyB}` : '–',
        formatP(p.perImage.adjustedP),
        p.outcome === 'beats'
          ? `${p.a} beats ${p.b}`
          : p.outcome === 'one-seed'
            ? 'one seed'
            : 'inconclusive',
      ]),
    },
  };
}
