import { initBackend } from '@headbench/engine';
import { camFidelity } from '@headbench/spec';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildHead, classActivationMap, HEAD_NAMES } from '../src/index.js';
import { camWeights } from '../src/train/cam.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('the nin head', () => {
  it('has C·(c + 1) parameters: a 1×1 conv to one map per class, no Dense', () => {
    for (const [c, classes] of [
      [512, 17],
      [8, 3],
    ]) {
      const head = buildHead([7, 7, c], 'nin', classes);
      expect(head.countParams()).toBe(classes * (c + 1));
      expect(head.layers.map((l) => l.getClassName())).toEqual([
        'InputLayer',
        'Conv2D',
        'HeadbenchGlobalPool2D',
        'Activation',
      ]);
      head.dispose();
    }
  });

  it('its class activation map is exact: each class logit is the mean of its map plus the bias', async () => {
    const shape: [number, number, number] = [4, 5, 8];
    const classes = 3;
    const head = buildHead(shape, 'nin', classes, { seed: 4 });
    const x = tf.randomUniform([1, ...shape], 0, 2, 'float32', 11);
    const probs = (await (head.predict(x) as tf.Tensor).data()) as Float32Array;
    const features = (await x.data()) as Float32Array;
    const { kernel, kernelShape, power } = await camWeights(head, 'nin');
    expect(kernelShape).toEqual([8, 3]);
    expect(power).toBeUndefined();
    const bias = (await head.getLayer('predictions').getWeights()[1].data()) as Float32Array;
    const logits = [0, 1, 2].map((k) => {
      const cam = classActivationMap(features, shape, kernel, kernelShape, k);
      return cam.reduce((a, b) => a + b, 0) / cam.length + bias[k];
    });
    // softmax(logits) is what the head computed.
    const z = logits.map((l) => Math.exp(l - Math.max(...logits)));
    const sum = z.reduce((a, b) => a + b, 0);
    z.forEach((v, k) => expect(probs[k]).toBeCloseTo(v / sum, 5));
    x.dispose();
    head.dispose();
  });

  it('GeM maps are drawn on f^p: their mean is the pooled p-th power mean times the weights', async () => {
    const shape: [number, number, number] = [3, 3, 4];
    const head = buildHead(shape, 'gem', 2, { seed: 2 });
    const x = tf.randomUniform([1, ...shape], 0, 1, 'float32', 5);
    const features = (await x.data()) as Float32Array;
    const { kernel, kernelShape, power } = await camWeights(head, 'gem');
    expect(power).toBeCloseTo(3, 6);
    const cam = classActivationMap(features, shape, kernel, kernelShape, 1, power);
    let want = 0;
    for (let k = 0; k < 4; k++) {
      let m = 0;
      for (let p = 0; p < 9; p++) m += Math.max(features[p * 4 + k], 1e-6) ** 3 / 9;
      want += kernel[k * 2 + 1] * m;
    }
    expect(cam.reduce((a, b) => a + b, 0) / 9).toBeCloseTo(want, 5);
    x.dispose();
    head.dispose();
  });

  it('every head has a CAM fidelity: exact for gap, nin and gem; approximate for max pooling; none for fc', () => {
    expect(Object.fromEntries(HEAD_NAMES.map((h) => [h, camFidelity(h)]))).toEqual({
      fc: 'none',
      gap: 'exact',
      gmp: 'approximate',
      avgmax: 'approximate',
      catavgmax: 'approximate',
      gem: 'exact',
      nin: 'exact',
    });
  });
});
