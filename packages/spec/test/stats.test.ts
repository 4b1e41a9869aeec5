import { describe, expect, it } from 'vitest';
import {
  binomialHalfCdf,
  compareHeads,
  comparisonTables,
  decodeCorrectness,
  encodeCorrectness,
  holmAdjust,
  incompleteBeta,
  mcnemarExact,
  meanInterval,
  pairedDifference,
  samplesForHalfWidth,
  studentTCdf,
  studentTQuantile,
} from '../src/index.ts';

describe('distributions against textbook values', () => {
  it('t quantiles match printed tables (two-sided 95%: 12.706, 4.303, 2.776, 2.262, 2.042)', () => {
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.7062, 3);
    expect(studentTQuantile(0.975, 2)).toBeCloseTo(4.3027, 4);
    expect(studentTQuantile(0.975, 4)).toBeCloseTo(2.7764, 4);
    expect(studentTQuantile(0.975, 9)).toBeCloseTo(2.2622, 4);
    expect(studentTQuantile(0.975, 30)).toBeCloseTo(2.0423, 4);
    expect(studentTQuantile(0.95, 10)).toBeCloseTo(1.8125, 4);
    expect(studentTQuantile(0.025, 4)).toBeCloseTo(-2.7764, 4);
  });

  it('t quantiles match the closed forms for 1 (Cauchy) and 2 degrees of freedom', () => {
    for (const p of [0.6, 0.9, 0.975, 0.995]) {
      expect(studentTQuantile(p, 1)).toBeCloseTo(Math.tan(Math.PI * (p - 0.5)), 8);
      expect(studentTQuantile(p, 2)).toBeCloseTo((2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 8);
    }
    expect(studentTCdf(1, 1)).toBeCloseTo(0.75, 12); // atan(1)/π + 1/2
  });

  it('incomplete beta matches closed forms', () => {
    for (const x of [0.1, 0.37, 0.5, 0.9]) {
      expect(incompleteBeta(x, 1, 1)).toBeCloseTo(x, 12);
      expect(incompleteBeta(x, 3, 1)).toBeCloseTo(x ** 3, 12);
      expect(incompleteBeta(x, 2, 2)).toBeCloseTo(3 * x * x - 2 * x ** 3, 12);
    }
    expect(() => incompleteBeta(1.5, 1, 1)).toThrow(/x must be in \[0, 1\]/);
  });

  it('binomial(n, 1/2) CDF by counting subsets', () => {
    expect(binomialHalfCdf(1, 10)).toBeCloseTo(11 / 1024, 14);
    expect(binomialHalfCdf(3, 6)).toBeCloseTo((1 + 6 + 15 + 20) / 64, 14);
    expect(binomialHalfCdf(-1, 6)).toBe(0);
    expect(binomialHalfCdf(6, 6)).toBe(1);
  });
});

describe('tests and intervals', () => {
  it('exact McNemar p for given 2×2 tables', () => {
    // b = 1, c = 9: 2 · (C(10,0) + C(10,1)) / 2^10 = 22/1024.
    expect(mcnemarExact(1, 9)).toBeCloseTo(22 / 1024, 14);
    expect(mcnemarExact(9, 1)).toBeCloseTo(22 / 1024, 14);
    // b = 0, c = 6: 2 / 64.
    expect(mcnemarExact(0, 6)).toBeCloseTo(0.03125, 14);
    expect(mcnemarExact(5, 5)).toBe(1);
    expect(mcnemarExact(0, 0)).toBe(1);
    // Large n stays finite: b = 400, c = 500 is far past 0.05 but not zero.
    const p = mcnemarExact(400, 500);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(0.01);
    expect(() => mcnemarExact(-1, 2)).toThrow(/b must be a count/);
  });

  it('Holm orders the p-values and keeps the adjusted ones monotone', () => {
    // sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → max(0.06, 0.04) = 0.06.
    const adj = holmAdjust([0.01, 0.04, 0.03, 0.005]);
    expect(adj[0]).toBeCloseTo(0.03, 14);
    expect(adj[1]).toBeCloseTo(0.06, 14);
    expect(adj[2]).toBeCloseTo(0.06, 14);
    expect(adj[3]).toBeCloseTo(0.02, 14);
    expect(holmAdjust([0.6, Number.NaN])).toEqual([0.6, Number.NaN]);
    expect(holmAdjust([0.5, 0.9])).toEqual([1, 1]);
  });

  it('a paired interval worked out by hand', () => {
    const a = new Map([
      [0, 0.8],
      [1, 0.82],
      [2, 0.78],
      [3, 0.85],
      [4, 0.81],
      [9, 0.5], // no partner: left out
    ]);
    const b = new Map([
      [0, 0.75],
      [1, 0.8],
      [2, 0.77],
      [3, 0.8],
      [4, 0.76],
    ]);
    // d = 0.05, 0.02, 0.01, 0.05, 0.05: mean 0.036, s² = 0.00152 / 4, t(0.975, 4) = 2.776445.
    const d = pairedDifference(a, b);
    const s = Math.sqrt(0.00152 / 4);
    const half = (2.776445 * s) / Math.sqrt(5);
    expect(d.keys).toEqual([0, 1, 2, 3, 4]);
    expect(d.mean).toBeCloseTo(0.036, 12);
    expect(d.std).toBeCloseTo(s, 12);
    expect(d.lo).toBeCloseTo(0.036 - half, 6);
    expect(d.hi).toBeCloseTo(0.036 + half, 6);
  });

  it('one value has a mean and no interval', () => {
    const m = meanInterval([0.7]);
    expect(m.mean).toBe(0.7);
    expect(m.std).toBe(0);
    expect(Number.isNaN(m.lo)).toBe(true);
  });

  it('seeds needed for a ±1 point interval', () => {
    // s = 0.02: n = 17 gives t(16)·0.02/√17 = 0.01028 > 0.01; n = 18 gives t(17)·0.02/√18 = 0.00995.
    expect(samplesForHalfWidth(0.02, 0.01)).toBe(18);
    expect(samplesForHalfWidth(0, 0.01)).toBe(2);
  });
});

describe('per-image correctness', () => {
  it('round-trips and counts discordant images', () => {
    const bits = [true, false, true, true, false, false, true];
    const hex = encodeCorrectness(bits);
    expect(hex).toBe('d4'); // 1011 → 0b1101, 001 → 0b0100
    expect(decodeCorrectness(hex, bits.length)).toEqual(bits);
    expect(() => decodeCorrectness(hex, 12)).toThrow(/cannot hold exactly 12 images/);
    expect(() => decodeCorrectness('zz', 8)).toThrow(/hex/);
  });
});

describe('compareHeads', () => {
  const images = 40;
  // Head A right on the first `k` images, B on the first `m`: discordant counts are exact.
  const correct = (k: number) => encodeCorrectness(Array.from({ length: images }, (_, i) => i < k));
  const run = (seed: number, k: number) => ({
    seed,
    testAccuracy: k / images,
    testCorrect: correct(k),
    testCount: images,
    splitHash: `split${seed}`,
  });

  it('A beats B when the paired interval excludes 0 and the adjusted McNemar p is small', () => {
    const c = compareHeads([
      { label: 'gap', runs: [run(0, 30), run(1, 31), run(2, 30), run(3, 32)] },
      { label: 'fc', runs: [run(0, 20), run(1, 22), run(2, 21), run(3, 20), { seed: 4 }] },
    ]);
    expect(c.pending).toBe(1);
    expect(c.heads[0].accuracy.n).toBe(4);
    const [pair] = c.pairs;
    expect(pair.a).toBe('gap');
    expect(pair.perImage).toMatchObject({ onlyA: 10 + 9 + 9 + 12, onlyB: 0, images: 160 });
    // Exact: 2 · 0.5^40; one pair, so Holm leaves it.
    expect(pair.perImage.adjustedP).toBeCloseTo(2 * 0.5 ** 40, 20);
    expect(pair.outcome).toBe('beats');
    expect(pair.sentence).toMatch(
      /^gap beats fc by 25\.0 points \(95% CI \d+\.\d\.\.\d+\.\d, adjusted p < 0\.001\)/,
    );
    expect(c.verdict).toContain('1 run still training is left out');
    const t = comparisonTables(c);
    expect(t.heads.rows[0]).toEqual(['gap', '4', '76.9', expect.stringMatching(/\.\./)]);
    expect(t.pairs.rows[0][0]).toBe('gap − fc');
  });

  it('inconclusive when the interval includes 0, with the seeds a ±1 point interval would take', () => {
    const c = compareHeads([
      { label: 'gap', runs: [run(0, 30), run(1, 20), run(2, 26)] },
      { label: 'gmp', runs: [run(0, 22), run(1, 28), run(2, 25)] },
    ]);
    const [pair] = c.pairs;
    expect(pair.outcome).toBe('inconclusive');
    expect(pair.sentence).toContain('inconclusive — the interval includes 0');
    expect(pair.sentence).toMatch(/about \d+ more seeds would narrow the interval to ±1 point/);
  });

  it('one seed says so', () => {
    const c = compareHeads([
      { label: 'gap', runs: [run(0, 30)] },
      { label: 'gmp', runs: [run(0, 20)] },
    ]);
    expect(c.pairs[0].outcome).toBe('one-seed');
    expect(c.pairs[0].sentence).toContain('one seed — no interval over seeds');
    expect(c.verdict).toContain('With one seed per head there is no interval over seeds.');
  });

  it('tables do not depend on the order of the groups when means tie', () => {
    const gap = { label: 'gap', runs: [run(0, 30), run(1, 20)] };
    const fc = { label: 'fc', runs: [run(0, 20), run(1, 30)] };
    const one = compareHeads([gap, fc]);
    const other = compareHeads([fc, gap]);
    expect(one.pairs[0].a).toBe('fc');
    expect(other.pairs[0].a).toBe('fc');
    expect(one.verdict).toBe(other.verdict);
  });

  it('no per-image pooling across different splits', () => {
    const c = compareHeads([
      { label: 'gap', runs: [run(0, 30), run(1, 30)] },
      {
        label: 'gmp',
        runs: [
          { ...run(0, 20), splitHash: 'other' },
          { ...run(1, 20), splitHash: 'other' },
        ],
      },
    ]);
    expect(c.pairs[0].perImage.images).toBe(0);
    expect(Number.isNaN(c.pairs[0].perImage.p)).toBe(true);
  });
});
