import { createHash } from 'node:crypto';
import { HeadbenchInputError } from '../errors.js';
import { Rng } from '../rng.js';
import type { ImageDataset, Split } from './types.js';

/** Validation carved from the training part when the ratio has no validation term: 1/8 of it. */
export const DEFAULT_VAL_FRACTION = 1 / 8;

export interface SplitOptions {
  /**
   * `train:val:test` ("6:1:1"), or `train:test` ("7:1", the reference experiment's) with validation carved
   * out of the training part by `valFraction`. Default 7:1.
   */
  ratio?: string;
  /** Share of the training part held out for validation when `ratio` has two terms (default 1/8). */
  valFraction?: number;
  seed?: number;
}

/** Fractions of each class that go to validation and test, from a ratio and a validation fraction. */
export function splitFractions(ratio = '7:1', valFraction?: number): { val: number; test: number } {
  const m = /^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*(?::\s*(\d+(?:\.\d+)?)\s*)?$/.exec(ratio);
  const parts = m ? [m[1], m[2], m[3]].filter((p) => p !== undefined).map(Number) : [];
  if (!m || parts.some((p) => !(p > 0))) {
    throw new HeadbenchInputError(
      `split: '${ratio}' must look like train:val:test ("6:1:1") or train:test ("7:1"), every part > 0`,
    );
  }
  const total = parts.reduce((a, b) => a + b, 0);
  if (parts.length === 3) {
    if (valFraction !== undefined)
      throw new HeadbenchInputError(
        `split: '${ratio}' already sets validation; valFraction applies to train:test ratios only`,
      );
    return { val: parts[1] / total, test: parts[2] / total };
  }
  const f = valFraction ?? DEFAULT_VAL_FRACTION;
  if (!(f > 0 && f < 1)) throw new HeadbenchInputError(`valFraction: ${f} must be in (0, 1)`);
  const test = parts[1] / total;
  return { val: (1 - test) * f, test };
}

/** Take round(n·f) of `indices` (at least one, leaving at least `keep`) from the front; returns [taken, rest]. */
function carve(indices: number[], f: number, keep: number): [number[], number[]] {
  if (f === 0 || indices.length <= keep) return [[], indices];
  const n = Math.min(indices.length - keep, Math.max(1, Math.round(indices.length * f)));
  return [indices.slice(0, n), indices.slice(n)];
}

/**
 * Three sets, stratified per class and seeded. The dataset's own `train/` and `test/` split is kept when it has
 * one, and validation is carved from its training part. Otherwise each class is shuffled with the seed, its
 * first round(n·test) images go to test and the next round(n·val) to validation (at least one each while a
 * class has images left for training).
 */
export function splitDataset(ds: ImageDataset, options: SplitOptions = {}): Split {
  const rng = new Rng(`split:${options.seed ?? 0}`);
  const byClass: number[][] = ds.classes.map(() => []);
  const split: Split = { train: [], val: [], test: [] };
  if (ds.predefinedSplit) {
    const f = options.valFraction ?? DEFAULT_VAL_FRACTION;
    if (!(f > 0 && f < 1)) throw new HeadbenchInputError(`valFraction: ${f} must be in (0, 1)`);
    for (const i of ds.predefinedSplit.train) byClass[ds.labels[i]].push(i);
    split.test = [...ds.predefinedSplit.test];
    for (const indices of byClass) {
      rng.shuffle(indices);
      const [val, train] = carve(indices, f, 1);
      split.val.push(...val);
      split.train.push(...train);
    }
  } else {
    const f = splitFractions(options.ratio, options.valFraction);
    for (const [i, label] of ds.labels.entries()) byClass[label].push(i);
    for (const indices of byClass) {
      rng.shuffle(indices);
      const [test, rest] = carve(indices, f.test, 2);
      // Validation's share of what test left, so each set keeps its share of the class.
      const [val, train] = carve(rest, f.val / (1 - f.test), 1);
      split.test.push(...test);
      split.val.push(...val);
      split.train.push(...train);
    }
  }
  for (const part of [split.train, split.val, split.test]) part.sort((a, b) => a - b);
  return split;
}

/** sha256 of the three index lists: two results with the same hash were measured on the same images. */
export function splitHash(split: Split): string {
  return createHash('sha256')
    .update(`train:${split.train.join(',')}\nval:${split.val.join(',')}\ntest:${split.test.join(',')}`)
    .digest('hex')
    .slice(0, 16);
}
