import { initBackend } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBackbone, setTrainable } from '../src/models/backbones/index.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('fine-tuning every layer', () => {
  // Keras' InceptionV3 has BatchNorm without gamma (scale: false); stock tfjs-layers 4.22 threw on it in
  // training mode ("Cannot read properties of undefined (reading 'read')").
  it('inceptionv3 (BatchNorm without gamma) takes a training step: finite loss, a gradient for every weight', () => {
    const base = buildBackbone('inceptionv3', { inputShape: [75, 75, 3], seed: 1 });
    const gap = tfl.layers.globalAveragePooling2d({}).apply(base.outputs[0]);
    const out = tfl.layers.dense({ units: 3, activation: 'softmax' }).apply(gap) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: base.inputs, outputs: out });
    const x = tf.randomNormal([2, 75, 75, 3], 0, 1, 'float32', 5);
    const y = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3);
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      vars,
    );
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    expect(Object.keys(grads).length).toBe(vars.length);
    for (const v of vars) {
      const g = grads[v.name];
      expect(g.shape).toEqual(v.shape);
      expect(Number.isFinite(tf.sum(tf.abs(g)).dataSync()[0])).toBe(true);
    }
    tf.dispose([value, x, y, ...Object.values(grads)]);
    model.dispose();
  });
});

describe('fine-tuning the last blocks', () => {
  // The frozen blocks' BatchNorm runs in inference mode while gradients are recorded; without gamma, stock
  // tfjs-core's batchNorm gradient saved the missing scale and threw ("Identity: missing input" on wasm).
  for (const backend of ['wasm', 'cpu'] as const)
    it(`${backend}: inceptionv3 with its last 2 blocks trainable takes a step that changes only those`, async () => {
      await initBackend(backend);
      const base = buildBackbone('inceptionv3', { inputShape: [75, 75, 3], seed: 1 });
      setTrainable(base, 'inceptionv3', 2);
      const gap = tfl.layers.globalAveragePooling2d({}).apply(base.outputs[0]);
      const out = tfl.layers.dense({ units: 3, activation: 'softmax' }).apply(gap) as tfl.SymbolicTensor;
      const model = tfl.model({ inputs: base.inputs, outputs: out });
      const frozen = base.layers.filter((l) => !l.trainable).flatMap((l) => l.weights);
      const trained = base.layers.filter((l) => l.trainable && l.weights.length > 0);
      expect(trained.length).toBeGreaterThan(10);
      expect(frozen.length).toBeGreaterThan(100);
      const before = frozen.map((w) => w.read().dataSync().slice());
      const kernel = trained.find((l) => l.getClassName() === 'Conv2D')!.getWeights()[0];
      const kernelBefore = kernel.dataSync().slice();
      const x = tf.randomNormal([2, 75, 75, 3], 0, 1, 'float32', 5);
      const y = tf.oneHot(tf.tensor1d([0, 2], 'int32'), 3);
      const opt = tf.train.sgd(0.1);
      const loss = opt.minimize(
        () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        true,
      );
      expect(Number.isFinite(loss!.dataSync()[0])).toBe(true);
      // Frozen layers' weights, moving statistics included, are untouched; a trained conv moved.
      const changed = frozen.filter((w, i) =>
        w
          .read()
          .dataSync()
          .some((v, j) => v !== before[i][j]),
      );
      expect(changed.map((w) => w.name)).toEqual([]);
      const kernelAfter = trained
        .find((l) => l.getClassName() === 'Conv2D')!
        .getWeights()[0]
        .dataSync();
      expect(kernelAfter.some((v, j) => v !== kernelBefore[j])).toBe(true);
      tf.dispose([loss!, x, y]);
      model.dispose();
      opt.dispose();
      await initBackend('wasm');
    });
});
