import { initBackend } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildHead,
  type RunConfig,
  runConfigHash,
  validateRunConfig,
  weightsContentHash,
} from '../src/index.js';

beforeAll(async () => {
  await initBackend('wasm');
});

const base: RunConfig = {
  dataset: 'generated:flowers4',
  backbone: 'smallcnn',
  weights: 'none',
  trainable: 'all',
  head: 'gap',
  optimizer: 'rmsprop',
  lr: 1e-3,
  decay: 0,
  batchSize: 16,
  epochs: 3,
  seed: 0,
  size: 32,
};

describe('what identifies a computation', () => {
  it('the config hash covers nested fields and the split, and ignores key order', () => {
    const h = runConfigHash(base);
    expect(runConfigHash({ ...base, augment: { shift: 0.1 } })).not.toBe(
      runConfigHash({ ...base, augment: { shift: 0.2 } }),
    );
    expect(runConfigHash({ ...base, earlyStopping: { monitor: 'val_loss', patience: 2 } })).not.toBe(
      runConfigHash({ ...base, earlyStopping: { monitor: 'val_loss', patience: 3 } }),
    );
    expect(runConfigHash({ ...base, splitSeed: 'seed' })).not.toBe(h);
    expect(runConfigHash({ ...base, valFraction: 0.2 })).not.toBe(h);
    const reordered = Object.fromEntries(Object.entries(base).reverse()) as unknown as RunConfig;
    expect(runConfigHash(reordered)).toBe(h);
  });

  it('the weights hash follows the values: same seed same hash, one changed value another', async () => {
    const a = buildHead([2, 2, 4], 'gap', 3, { seed: 1 });
    const b = buildHead([2, 2, 4], 'gap', 3, { seed: 1 });
    expect(await weightsContentHash(a)).toBe(await weightsContentHash(b));
    const [kernel, bias] = b.getLayer('predictions').getWeights();
    const changed = kernel.dataSync().slice();
    changed[0] += 1e-6;
    b.getLayer('predictions').setWeights([tf.tensor(changed, kernel.shape), bias]);
    expect(await weightsContentHash(a)).not.toBe(await weightsContentHash(b));
    a.dispose();
    b.dispose();
  });

  it('split fields are validated with the field named', () => {
    expect(() => validateRunConfig({ ...base, split: '6:1:1', valFraction: 0.1 })).toThrow(
      /valFraction applies to train:test ratios only/,
    );
    expect(() => validateRunConfig({ ...base, splitSeed: -1 })).toThrow(
      /splitSeed: '-1' must be an integer in \[0, 2\^31\) or 'seed'/,
    );
    expect(() => validateRunConfig({ ...base, splitSeed: 'x' as never })).toThrow(
      /splitSeed: 'x' must be an integer in \[0, 2\^31\) or 'seed'/,
    );
    expect(validateRunConfig({ ...base, split: '6:1:1', splitSeed: 'seed' }).splitSeed).toBe('seed');
  });
});
