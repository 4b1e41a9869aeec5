import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@headbench/engine';
import { decodeCorrectness } from '@headbench/spec';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBackbone,
  buildHead,
  classActivationMap,
  GlobalPool2D,
  learningRateAt,
  loadModel,
  openDataset,
  type RunConfig,
  RunStoppedError,
  StepDropout,
  saveModel,
  setDropoutStep,
  splitDataset,
  splitHash,
  trainRun,
  validateRunConfig,
} from '../src/index.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'headbench-train-'));
  await initBackend('wasm');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const base: RunConfig = {
  dataset: 'generated:flowers4?perClass=12&size=40&seed=5',
  backbone: 'smallcnn',
  weights: 'none',
  trainable: 'all',
  head: 'gap',
  optimizer: 'rmsprop',
  lr: 1e-3,
  decay: 1e-4,
  batchSize: 16,
  epochs: 3,
  seed: 3,
  size: 32,
  camSamples: 2,
  shifts: [0, 0.25],
};

describe('heads and pooling', () => {
  it('VGG19 + FC on 17 classes has 12,854,289 head parameters; VGG19 + GAP has 8,721', () => {
    const vgg = buildBackbone('vgg19', { inputShape: [224, 224, 3] });
    const shape = vgg.outputs[0].shape.slice(1) as [number, number, number];
    expect(shape).toEqual([7, 7, 512]);
    const fc = buildHead(shape, 'fc', 17);
    const gap = buildHead(shape, 'gap', 17);
    const cat = buildHead(shape, 'catavgmax', 17);
    expect(fc.countParams()).toBe(12_854_289);
    expect(gap.countParams()).toBe(8_721);
    expect(cat.countParams()).toBe(1024 * 17 + 17);
    expect(buildHead(shape, 'gem', 17).countParams()).toBe(8_721 + 1);
    for (const m of [vgg, fc, gap, cat]) m.dispose();
  });

  it('pools avg, max, avgmax, catavgmax and gem as defined', () => {
    const x = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 2, 2]);
    const run = (mode: 'avg' | 'max' | 'avgmax' | 'catavgmax' | 'gem') => {
      const layer = new GlobalPool2D({ mode });
      const y = layer.apply(x) as tf.Tensor;
      const out = Array.from(y.dataSync());
      y.dispose();
      return out;
    };
    expect(run('avg')).toEqual([4, 5]);
    expect(run('max')).toEqual([7, 8]);
    expect(run('avgmax')).toEqual([5.5, 6.5]);
    expect(run('catavgmax')).toEqual([4, 5, 7, 8]);
    const gem = run('gem');
    const expected = [1, 3, 5, 7].map((v) => v ** 3).reduce((a, b) => a + b) / 4;
    expect(gem[0]).toBeCloseTo(expected ** (1 / 3), 3);
    x.dispose();
  });

  it('saves and loads a model with the custom pooling layer', async () => {
    const head = buildHead([3, 3, 4], 'gem', 3, { seed: 1 });
    const x = tf.randomUniform([2, 3, 3, 4], 0, 1, 'float32', 7);
    const before = head.predict(x) as tf.Tensor;
    await saveModel(head, join(tmp, 'gem-head'));
    const loaded = await loadModel(join(tmp, 'gem-head'));
    const after = loaded.predict(x) as tf.Tensor;
    expect(Array.from(after.dataSync())).toEqual(Array.from(before.dataSync()));
    tf.dispose([x, before, after]);
    head.dispose();
    loaded.dispose();
  });

  it('a GAP class activation map averages to the class logit minus its bias', () => {
    const feats = Float32Array.from({ length: 2 * 2 * 3 }, (_, i) => (i % 5) - 1);
    const kernel = Float32Array.from({ length: 3 * 2 }, (_, i) => i * 0.1 - 0.2);
    const cam = classActivationMap(feats, [2, 2, 3], kernel, [3, 2], 1);
    const pooled = [0, 1, 2].map((k) => (feats[k] + feats[3 + k] + feats[6 + k] + feats[9 + k]) / 4);
    const logit = pooled.reduce((s, v, k) => s + v * kernel[k * 2 + 1], 0);
    expect(cam.reduce((a, b) => a + b) / 4).toBeCloseTo(logit, 5);
  });
});

describe('training', () => {
  it('applies Keras-style time decay and validates configs with named fields', () => {
    expect(learningRateAt({ lr: 1e-4, decay: 1e-6 }, 0)).toBe(1e-4);
    expect(learningRateAt({ lr: 1e-4, decay: 1e-6 }, 1e6)).toBeCloseTo(5e-5, 12);
    expect(() => validateRunConfig({ ...base, head: 'gapp' as never, batchSize: 0 })).toThrow(
      /head: 'gapp' is not one of fc, gap, gmp.*\n.*batchSize: 0 is not an integer in \[1, 4096\]/s,
    );
  });

  it('draws dropout masks from (seed, layer, step): repeatable, new each step, identity at inference', () => {
    const layer = new StepDropout({ rate: 0.5, seed: 1, name: 'd' });
    const x = tf.ones([4, 64]);
    const mask = (step: number) => {
      setDropoutStep(step);
      const y = layer.apply(x, { training: true }) as tf.Tensor;
      const v = Array.from(y.dataSync());
      y.dispose();
      return v;
    };
    expect(mask(7)).toEqual(mask(7));
    expect(mask(8)).not.toEqual(mask(7));
    expect(new Set(mask(7))).toEqual(new Set([0, 2]));
    const inference = layer.apply(x) as tf.Tensor;
    expect(Array.from(inference.dataSync()).every((v) => v === 1)).toBe(true);
    tf.dispose([x, inference]);
  });

  it('fine-tunes a conv backbone on wasm and resumes exactly from a checkpoint (with dropout)', async () => {
    const full = await trainRun({
      config: { ...base, dropout: 0.3 },
      runId: 'full',
      runDir: join(tmp, 'full'),
      home: join(tmp, 'home'),
      backend: 'wasm',
    });
    expect(full.backend).toBe('wasm');
    expect(full.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);
    expect(full.params.trainable).toBeGreaterThan(200_000);
    expect(full.summary!.confusion.flat().reduce((a, b) => a + b)).toBe(full.dataset.test);
    expect(full.summary!.shifted.map((s) => s.pixels)).toEqual([0, 8]);
    expect(full.summary!.shifted[1].directions).toHaveLength(4);
    expect(full.summary!.cams).toHaveLength(2);
    expect(full.summary!.cam_fidelity).toBe('exact');
    expect(full.provenance).toMatchObject({
      backend: 'wasm',
      node: process.version,
      tfjs: tf.version_core,
      featureCache: 'off',
      split: { seed: 0, train: full.dataset.train, val: full.dataset.val, test: full.dataset.test },
      weights: { source: 'none', contentHash: expect.stringMatching(/^[0-9a-f]{64}$/) },
    });

    const dir = join(tmp, 'interrupted');
    const opts = {
      config: { ...base, dropout: 0.3 },
      runId: 'int',
      runDir: dir,
      home: join(tmp, 'home'),
      backend: 'wasm' as const,
    };
    await expect(trainRun({ ...opts, stopAfterEpoch: () => true })).rejects.toBeInstanceOf(RunStoppedError);
    const resumed = await trainRun(opts);
    const strip = (r: typeof full) => r.epochs.map(({ time_s, images_per_s, ...m }) => m);
    expect(strip(resumed)).toEqual(strip(full));
    const { cams, ...summary } = full.summary!;
    expect(resumed.summary).toMatchObject(summary);
  });

  it('reads the test set only after training ends, and selects the epoch on validation', async () => {
    const reads: { index: number; epochsDone: number }[] = [];
    let epochsDone = 0;
    const config: RunConfig = { ...base, epochs: 3, splitSeed: 'seed' };
    const result = await trainRun({
      config,
      runId: 'reads',
      runDir: join(tmp, 'reads'),
      home: join(tmp, 'home'),
      backend: 'wasm',
      onImageRead: (index) => reads.push({ index, epochsDone }),
      onEpoch: () => {
        epochsDone++;
      },
    });
    const ds = await openDataset(config.dataset, { cacheDir: join(tmp, 'home', 'datasets') });
    const split = splitDataset(ds, { seed: config.seed });
    expect(splitHash(split)).toBe(result.provenance!.split.hash);
    expect(result.provenance!.split.seed).toBe(3);
    const test = new Set(split.test);
    const testReads = reads.filter((r) => test.has(r.index));
    // Every test image is read, and none before the last epoch's metrics were out.
    expect(new Set(testReads.map((r) => r.index))).toEqual(test);
    expect(testReads.every((r) => r.epochsDone === config.epochs)).toBe(true);
    // Validation images are read during training (epoch one decodes them for the validation pass).
    expect(reads.some((r) => split.val.includes(r.index) && r.epochsDone === 0)).toBe(true);
    const best = result.epochs.reduce((b, e) => (e.val_accuracy > b.val_accuracy ? e : b));
    expect(result.summary!.selected_epoch).toBe(best.epoch);
    expect(result.summary!.val_accuracy).toBe(best.val_accuracy);
    expect(result.summary!.test_count).toBe(split.test.length);
    const correct = decodeCorrectness(result.summary!.test_correct, result.summary!.test_count);
    expect(correct.filter(Boolean).length / correct.length).toBeCloseTo(result.summary!.test_accuracy, 12);
    expect(result.summary!.gap).toBeCloseTo(
      result.summary!.train_accuracy - result.summary!.test_accuracy,
      12,
    );
  });

  it('transfers a trained backbone to another dataset from a run folder or run:<id>', async () => {
    const source = join(tmp, 'pretrain');
    await trainRun({
      config: { ...base, epochs: 1 },
      runId: 'pretrain',
      runDir: source,
      home: join(tmp, 'home'),
      backend: 'wasm',
    });
    const logs: string[] = [];
    const transfer = await trainRun({
      config: {
        ...base,
        dataset: 'generated:flowers3?perClass=8&size=40&seed=9',
        weights: 'run:pretrain',
        trainable: 'frozen',
        epochs: 1,
      },
      runId: 'transfer',
      runDir: join(tmp, 'transfer'),
      home: join(tmp, 'home'),
      backend: 'wasm',
      resolveWeights: async (ref) => join(tmp, ref.slice(4)),
      onLog: (m) => logs.push(m),
    });
    expect(logs.some((m) => /loaded \d+ layers of weights from run:pretrain/.test(m))).toBe(true);
    expect(transfer.dataset.classes).toHaveLength(3);
    const [a, b] = await Promise.all([
      loadModel(join(source, 'model')),
      loadModel(join(tmp, 'transfer', 'model')),
    ]);
    const kernel = (m: typeof a) => Array.from(m.getLayer('block1_conv').getWeights()[0].dataSync());
    expect(kernel(b)).toEqual(kernel(a)); // frozen: the transferred backbone is unchanged
    a.dispose();
    b.dispose();
    await expect(
      trainRun({
        config: { ...base, weights: join(tmp, 'nowhere') },
        runId: 'bad',
        runDir: join(tmp, 'bad'),
        home: join(tmp, 'home'),
      }),
    ).rejects.toThrow(/nowhere/);
  });

  it('trains a frozen backbone on cached features with the same metrics as without the cache', async () => {
    // Shifts without 0: the unshifted crop is measured all the same (consistency is relative to it).
    const config: RunConfig = {
      ...base,
      trainable: 'frozen',
      head: 'fc',
      hidden: 32,
      epochs: 2,
      shifts: [0.25, 0.125],
    };
    const common = { config, home: join(tmp, 'home'), backend: 'wasm' as const };
    const cached = await trainRun({ ...common, runId: 'c', runDir: join(tmp, 'cached') });
    const uncached = await trainRun({
      ...common,
      runId: 'u',
      runDir: join(tmp, 'uncached'),
      featureCache: false,
    });
    expect(cached.timings.featureSeconds).toBeGreaterThan(0);
    expect(uncached.timings.featureSeconds).toBeUndefined();
    expect(cached.params.trainable).toBe(cached.params.head);
    for (const [a, b] of cached.epochs.map((e, i) => [e, uncached.epochs[i]])) {
      expect(a.loss).toBeCloseTo(b.loss, 4);
      expect(a.val_loss).toBeCloseTo(b.val_loss, 4);
      expect(a.accuracy).toBe(b.accuracy);
      expect(a.val_accuracy).toBe(b.val_accuracy);
    }
    expect(cached.summary!.shifted).toEqual(uncached.summary!.shifted);
    expect(cached.summary!.shifted.map((r) => r.pixels)).toEqual([0, 4, 8]);
    expect(cached.provenance!.featureCache).toBe('cached');
    expect(cached.summary!.test_correct).toBe(uncached.summary!.test_correct);
    // A second head on the same frozen backbone reuses the cache: no backbone pass.
    const again = await trainRun({
      ...common,
      config: { ...config, head: 'gmp' },
      runId: 'c2',
      runDir: join(tmp, 'cached2'),
    });
    expect(again.timings.featureSeconds!).toBeLessThan(cached.timings.featureSeconds!);
  });

  it('leaks no tensors across a run', async () => {
    const run = (dir: string) =>
      trainRun({
        config: { ...base, epochs: 1, head: 'catavgmax' },
        runId: 'leak',
        runDir: join(tmp, dir),
        home: join(tmp, 'home'),
        backend: 'wasm',
      });
    // The first run may leave kernels' lazily built constants behind; a second run must add nothing.
    await run('leak1');
    const before = tf.memory().numTensors;
    await run('leak2');
    expect(tf.memory().numTensors).toBe(before);
  });
});

void tfl;
