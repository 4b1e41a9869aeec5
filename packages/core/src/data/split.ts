import { Rng } from '../rng.js';
import type { ImageDataset, Split } from './types.js';

export interface SplitOptions {
  /** train:test ratio as "7:1" or a test fraction in (0, 1). Default 7:1, the reference experiment's. */
  ratio?: string | number;
  seed?: number;
}

export function testFraction(ratio: string | number = '7:1'): number {
  if (typeof ratio === 'number') {
    if (!(ratio > 0 && ratio < 1))
      throw new RangeError(`split ratio: test fraction must be in (0, 1), got ${ratio}`);
    return ratio;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(ratio);
  if (!m || Number(m[1]) <= 0 || Number(m[2]) <= 0) {
    throw new RangeError(`split ratio must look like "7:1" (train:test), got "${ratio}"`);
  }
  return Number(m[2]) / (Number(m[1]) + Number(m[2]));
}

/**
 * The dataset's own split when it has one (train/ and test/ subtrees), else a stratified split:
 * each class is shuffled with the seed and its last round(n·f) images go to test (at least one).
 */
export function splitDataset(ds: ImageDataset, options: SplitOptions = {}): Split {
  if (ds.predefinedSplit) return ds.predefinedSplit;
  const f = testFraction(options.ratio);
  const rng = new Rng(`split:${options.seed ?? 0}`);
  const byClass: number[][] = ds.classes.map(() => []);
  for (const [i, label] of ds.labels.entries()) byClass[label].push(i);
  const split: Split = { train: [], test: [] };
  for (const indices of byClass) {
    if (indices.length === 0) continue;
    rng.shuffle(indices);
    const nTest =
      indices.length < 2 ? 0 : Math.min(indices.length - 1, Math.max(1, Math.round(indices.length * f)));
    split.test.push(...indices.slice(0, nTest));
    split.train.push(...indices.slice(nTest));
  }
  split.train.sort((a, b) => a - b);
  split.test.sort((a, b) => a - b);
  return split;
}
