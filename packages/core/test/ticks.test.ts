import { describe, expect, it } from 'vitest';
import { niceTicks } from '../src/report/svg.js';

describe('niceTicks', () => {
  it('a range flat but for rounding gets a padded axis (it looped forever: i++ stalls past 2^53)', () => {
    // Seed means of the same accuracy (1/17) that differ in the last bit.
    const lo = 1 / 17;
    const hi = lo + 2 ** -56;
    expect(hi).toBeGreaterThan(lo);
    const t = niceTicks(lo, hi, 6);
    expect(t.ticks.length).toBeGreaterThan(1);
    expect(t.ticks.length).toBeLessThan(20);
    expect(t.min).toBeLessThan(lo);
    expect(t.max).toBeGreaterThan(hi);
  });

  it('a narrow real range keeps its own ticks', () => {
    const t = niceTicks(2.833219, 2.833227, 6);
    expect(t.ticks[0]).toBeCloseTo(2.833219, 9);
    expect(t.ticks.at(-1)).toBeCloseTo(2.833227, 9);
  });
});
