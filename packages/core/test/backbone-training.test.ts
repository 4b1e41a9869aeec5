import { initBackend } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BackboneName } from '../src/config.js';
import { BACKBONE_NAMES } from '../src/config.js';
import { BACKBONES, buildBackbone, setTrainable } from '../src/models/backbones/index.js';

type Backend = 'wasm' | 'cpu';

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
  // Frozen blocks run while gradients are recorded, their BatchNorm in inference mode. Without gamma
  // (InceptionV3), stock tfjs-core's batchNorm gradient saved the missing scale and threw on every backend
  // ("Identity: missing input" on wasm). Every backbone at its smallest input, last block trainable.
  const cases: [Backend, BackboneName, number][] = [
    ...BACKBONE_NAMES.map((name): [Backend, BackboneName, number] => ['wasm', name, 1]),
    ['cpu', 'inceptionv3', 2],
  ];
  for (const [backend, name, blocks] of cases)
    it(`${backend}: ${name} with its last ${blocks} block(s) trainable takes a step that changes only those`, async () => {
      await initBackend(backend);
      const size = BACKBONES[name].minSize;
      const base = buildBackbone(name, { inputShape: [size, size, 3], seed: 1 });
      setTrainable(base, name, blocks);
      const gap = tfl.layers.globalAveragePooling2d({}).apply(base.outputs[0]);
      const out = tfl.layers.dense({ units: 3, activation: 'softmax' }).apply(gap) as tfl.SymbolicTensor;
      const model = tfl.model({ inputs: base.inputs, outputs: out });
      const frozen = base.layers.filter((l) => !l.trainable).flatMap((l) => l.weights);
      const trained = base.layers.filter((l) => l.trainable).flatMap((l) => l.trainableWeights);
      expect(trained.some((w) => w.shape.length === 4)).toBe(true);
      expect(frozen.length).toBeGreaterThan(0);
      const before = frozen.map((w) => w.read().dataSync().slice());
      const trainedBefore = trained.map((w) => w.read().dataSync().slice());
      // 4 images: with 2, a training-mode BatchNorm over a 1x1 map (MobileNetV2 at 32 px) outputs ±1
      // whatever its input, and the conv under it gets no gradient.
      const x = tf.randomNormal([4, size, size, 3], 0, 1, 'float32', 5);
      const y = tf.oneHot(tf.tensor1d([0, 2, 1, 0], 'int32'), 3);
      const opt = tf.train.sgd(0.1);
      const loss = opt.minimize(
        () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
        true,
      );
      expect(Number.isFinite(loss!.dataSync()[0])).toBe(true);
      // Frozen layers' weights, moving statistics included, are untouched; trained weights moved. (Not
      // necessarily a conv kernel: a randomly initialised MobileNetV2 with frozen inference-mode BatchNorm
      // shrinks its activations to ~1e-11 by the last block, so only its last BN's beta gets a gradient.)
      const changed = frozen.filter((w, i) =>
        w
          .read()
          .dataSync()
          .some((v, j) => v !== before[i][j]),
      );
      expect(changed.map((w) => w.name)).toEqual([]);
      const moved = trained.filter((w, i) =>
        w
          .read()
          .dataSync()
          .some((v, j) => v !== trainedBefore[i][j]),
      );
      expect(moved.length).toBeGreaterThan(0);
      tf.dispose([loss!, x, y]);
      model.dispose();
      opt.dispose();
      await initBackend('wasm');
    });
});
