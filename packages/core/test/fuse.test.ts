import { fuseForInference, initBackend } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackboneName } from '../src/config.js';
import { buildBackbone } from '../src/models/backbones/index.js';

// The fused inference graph is what feature extraction runs (train/features.ts): it must give the
// backbone's own predictions on the backend that runs it.
beforeAll(async () => {
  await initBackend('wasm');
});

/** Non-trivial BN statistics: with the fresh ones (mean 0, var 1, gamma 1, beta 0) folding is a no-op. */
function randomiseBatchNorm(m: tfl.LayersModel, seed: number) {
  let s = seed;
  for (const l of m.layers) {
    if (l.getClassName() !== 'BatchNormalization') continue;
    const w = l.getWeights();
    l.setWeights(
      w.map((t, i) =>
        i === w.length - 1
          ? tf.randomUniform(t.shape, 0.2, 3, 'float32', s++)
          : tf.randomNormal(t.shape, i === w.length - 2 ? 0 : 0.5, 0.5, 'float32', s++),
      ),
    );
  }
}

function relErr(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(
    () => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / Math.max(tf.max(tf.abs(a)).dataSync()[0], 1e-12),
  );
}

describe('fuseForInference', () => {
  const cases: [BackboneName, number, { bn: number; activation: number }][] = [
    ['smallcnn', 32, { bn: 4, activation: 4 }],
    ['nin', 32, { bn: 3, activation: 3 }],
    ['vgg16', 32, { bn: 0, activation: 0 }],
    ['mobilenetv2', 64, { bn: 52, activation: 35 }],
    ['mobilenetv2', 63, { bn: 52, activation: 35 }], // odd size: the stride-2 ZeroPadding2D must stay
    ['resnet50', 64, { bn: 53, activation: 33 }],
    ['inceptionv3', 75, { bn: 94, activation: 94 }],
  ];
  it.each(cases)('%s at %i: same output as predict, BN folded, no leaks', (name, size, folded) => {
    const m = buildBackbone(name, { inputShape: [size, size, 3], seed: 3 });
    randomiseBatchNorm(m, 7);
    const x = tf.randomNormal([2, size, size, 3], 0, 1, 'float32', 11);
    const want = m.predict(x) as tf.Tensor;
    const before = tf.memory().numTensors;
    const g = fuseForInference(m);
    expect(g.folded).toEqual(folded);
    const got = g.predict(x) as tf.Tensor;
    expect(got.shape).toEqual(want.shape);
    expect(relErr(want, got)).toBeLessThan(1e-5);
    got.dispose();
    g.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, want]);
    m.dispose();
  });

  it('leaves ZeroPadding2D alone before a conv it cannot fuse (a sigmoid conv runs as its own layer)', () => {
    const input = tfl.input({ shape: [9, 9, 4] });
    const padded = tfl.layers
      .zeroPadding2d({
        padding: [
          [1, 1],
          [1, 1],
        ],
      })
      .apply(input);
    const conv = tfl.layers
      .conv2d({ filters: 4, kernelSize: 3, activation: 'sigmoid', name: 'c' })
      .apply(padded) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: input, outputs: conv });
    const g = fuseForInference(m);
    const x = tf.randomNormal([2, 9, 9, 4], 0, 1, 'float32', 3);
    const [a, b] = [m.predict(x) as tf.Tensor, g.predict(x) as tf.Tensor];
    expect(b.shape).toEqual([2, 9, 9, 4]);
    expect(relErr(a, b)).toBeLessThan(1e-6);
    tf.dispose([a, b, x]);
    g.dispose();
    m.dispose();
  });

  it('keeps a conv → BN pair unfolded when the conv output has another consumer', () => {
    const input = tfl.input({ shape: [8, 8, 3] });
    const conv = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'c' }).apply(input);
    const bn = tfl.layers.batchNormalization({ name: 'bn' }).apply(conv) as tfl.SymbolicTensor;
    const both = tfl.layers.add().apply([conv as tfl.SymbolicTensor, bn]) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: input, outputs: both });
    randomiseBatchNorm(m, 1);
    const g = fuseForInference(m);
    expect(g.folded).toEqual({ bn: 0, activation: 0 });
    const x = tf.randomNormal([1, 8, 8, 3], 0, 1, 'float32', 2);
    const [a, b] = [m.predict(x) as tf.Tensor, g.predict(x) as tf.Tensor];
    expect(relErr(a, b)).toBeLessThan(1e-6);
    tf.dispose([a, b, x]);
    g.dispose();
    m.dispose();
  });
});
