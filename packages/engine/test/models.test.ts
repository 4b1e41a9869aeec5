import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { convTrainingStats, initBackend } from '../src/index.js';
import { maxAbs, rand, relErr } from './helpers.js';
import { flattenHead, mobileNetV2ish, ninNet, smallCnn, trainStep } from './models.js';

// Whole-model gradients chain 10-40 float32 kernels: measured errors are 1e-7..3e-5 depending on the
// weights, a wrong kernel gives ~1e-1..1. Single kernels are held to 1e-5. Weights are seeded: with a
// fresh draw per run, a ReLU input within float noise of 0 (its mask differing between backends) failed
// about one run in 25.
const MODEL_TOL = 1e-4;
const SIZE = 16;
const BATCH = 3;
const CLASSES = 4;

beforeAll(async () => {
  await initBackend('cpu');
  await initBackend('wasm');
});

async function lossAndGrads(backend: 'wasm' | 'cpu', model: tfl.LayersModel) {
  await initBackend(backend);
  const x = tf.tensor(rand(BATCH * SIZE * SIZE * 3, 42), [BATCH, SIZE, SIZE, 3]);
  const y = tf.oneHot(tf.tensor1d([0, 3, 1], 'int32'), CLASSES);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(
    () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
    vars,
  );
  const out = {
    loss: value.dataSync()[0],
    grads: Object.fromEntries(vars.map((v) => [v.name, grads[v.name].dataSync() as Float32Array])),
  };
  tf.dispose([x, y, value, ...Object.values(grads)]);
  return out;
}

const MODELS: Record<string, () => tfl.LayersModel> = {
  'smallcnn (conv3x3 SAME, BN, ReLU, MaxPool x4, GAP, Dense)': () => smallCnn(SIZE, CLASSES),
  'NIN mlpconv (5x5 conv, 1x1 convs, maxpool 3x3/2, seeded dropout)': () => ninNet(SIZE, CLASSES, 16),
  'MobileNetV2-style (expand 1x1, ZeroPadding + depthwise s2 VALID, s1 SAME, ReLU6, residual)': () =>
    mobileNetV2ish(SIZE, CLASSES),
  'Flatten -> Dense(512) -> Dense head': () => flattenHead(SIZE, CLASSES),
};

/** The model with every kernel redrawn from a seeded Glorot-uniform (the builders' own are unseeded). */
function seeded(model: tfl.LayersModel): tfl.LayersModel {
  model.weights.forEach((w, i) => {
    if (!/kernel$/.test(w.originalName)) return;
    const init = tf.tidy(() => tfl.initializers.glorotUniform({ seed: 7000 + i }).apply(w.shape));
    w.write(init);
  });
  return model;
}

describe('whole-model gradients: wasm (headbench kernels) vs cpu', () => {
  for (const [name, build] of Object.entries(MODELS)) {
    it(name, async () => {
      await initBackend('wasm');
      const model = seeded(build());
      const w = await lossAndGrads('wasm', model);
      const c = await lossAndGrads('cpu', model);
      await initBackend('wasm');
      model.dispose();
      expect(Math.abs(w.loss - c.loss) / Math.abs(c.loss)).toBeLessThan(1e-5);
      const names = Object.keys(c.grads);
      expect(names.length).toBeGreaterThan(3);
      // Some gradients are zero in exact arithmetic and only float noise in practice: e.g. the beta of
      // a BN whose output feeds (linearly, via a 1x1 conv) another training-mode BN, which removes any
      // per-channel constant. Relative to their own ~1e-9 size the two backends' noise differs
      // completely, so each variable's error is measured against max(its own scale, 1e-3 x the largest
      // gradient of the model): the size of float32 noise in this network.
      const global = Math.max(...names.map((v) => maxAbs(c.grads[v])));
      expect(global).toBeGreaterThan(1e-3);
      for (const v of names) {
        const err = relErr(w.grads[v], c.grads[v], 1e-3 * global);
        expect({ v, err: err <= MODEL_TOL ? 'ok' : err }).toEqual({ v, err: 'ok' });
      }
    });
  }
});

describe('input gradients nobody needs are not computed', () => {
  /** Conv2DBackpropInput kernels run by one gradient of the loss over the model's trainable weights. */
  async function inputGradientKernels(model: tfl.LayersModel) {
    const x = tf.tensor(rand(BATCH * SIZE * SIZE * 3, 3), [BATCH, SIZE, SIZE, 3]);
    const y = tf.oneHot(tf.tensor1d([0, 3, 1], 'int32'), CLASSES);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const before = convTrainingStats.calls;
    const profile = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        vars,
      );
      tf.dispose([value, ...Object.values(grads)]);
    });
    tf.dispose([x, y]);
    const plainCalls = convTrainingStats.calls - before;
    const shapes = profile.kernels
      .filter((k) => k.name === 'Conv2DBackpropInput')
      .map((k) => (k.outputShapes[0] ?? []).join('x'));
    return { shapes, plainCalls };
  }

  for (const backend of ['wasm', 'cpu'] as const)
    it(`${backend}: not the images' (first conv), nor a frozen block's`, async () => {
      await initBackend(backend);
      const model = smallCnn(SIZE, CLASSES);
      const all = await inputGradientKernels(model);
      // 4 linear convs (BN follows) ran plain; 3 input gradients, none the size of the images.
      expect(all.plainCalls).toBe(4);
      expect(all.shapes).toEqual(['3x2x2x128', '3x4x4x64', '3x8x8x32']);
      // Fine-tuning from the third conv: only the fourth conv's input gradient reaches a trained kernel.
      const convs = model.layers.filter((l) => l.getClassName() === 'Conv2D');
      for (const l of model.layers.slice(0, model.layers.indexOf(convs[2]))) l.trainable = false;
      const frozen = await inputGradientKernels(model);
      expect(frozen.shapes).toEqual(['3x2x2x128']);
      model.dispose();
      await initBackend('wasm');
    });
});

describe('training on wasm', () => {
  it('an optimizer step in tidy leaks no tensors and no wasm memory', async () => {
    await initBackend('wasm');
    const model = mobileNetV2ish(SIZE, CLASSES);
    const opt = tf.train.adam(1e-3);
    const x = tf.tensor(rand(BATCH * SIZE * SIZE * 3, 7), [BATCH, SIZE, SIZE, 3]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2], 'int32'), CLASSES);
    const step = () =>
      tf.tidy(() => {
        opt.minimize(
          () =>
            tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        );
      });
    step(); // creates Adam's slot variables
    const tensors = tf.memory().numTensors;
    const dataIds = tf.engine().backend.numDataIds();
    step();
    step();
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    tf.dispose([x, y]);
    model.dispose();
    opt.dispose();
  });

  it('smallcnn loss goes down on a fixed batch (real optimizer.minimize steps)', async () => {
    await initBackend('wasm');
    const model = smallCnn(SIZE, CLASSES);
    const opt = tf.train.adam(1e-2);
    const x = tf.tensor(rand(8 * SIZE * SIZE * 3, 8), [8, SIZE, SIZE, 3]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32'), CLASSES);
    const losses: number[] = [];
    for (let i = 0; i < 16; i++) {
      losses.push(trainStep(model, opt, x, y));
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.7);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('tfjs-layers compile + trainOnBatch works on wasm (NIN, with dropout)', async () => {
    await initBackend('wasm');
    const model = ninNet(SIZE, CLASSES, 16);
    model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
    const x = tf.tensor(rand(4 * SIZE * SIZE * 3, 9), [4, SIZE, SIZE, 3]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), CLASSES);
    const loss = (await model.trainOnBatch(x, y)) as number;
    expect(Number.isFinite(loss)).toBe(true);
    expect(loss).toBeGreaterThan(0);
    tf.dispose([x, y]);
    model.dispose();
  });
});
