import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { batchNormTrainingStats, initBackend } from '../src/index.js';
import { rand, relErr } from './helpers.js';

const TOL = 1e-5;

/** One BatchNormalization layer in training mode: output, input/gamma/beta gradients, moving stats. */
async function runOn(backend: 'wasm' | 'cpu', shape: number[], scale = true) {
  await initBackend(backend);
  const c = shape[shape.length - 1];
  const size = shape.reduce((a, b) => a * b, 1);
  const layer = tfl.layers.batchNormalization({ axis: -1, momentum: 0.9, scale });
  const x = tf.tensor(
    rand(size, 1).map((v) => 3 * v + 0.7),
    shape,
  );
  const w = tf.tensor(rand(size, 2), shape); // a loss that weighs every output differently
  layer.build(shape);
  layer.setWeights([
    ...(scale ? [tf.tensor(rand(c, 3).map((v) => 1 + 0.5 * v))] : []),
    tf.tensor(rand(c, 4)),
    tf.tensor(rand(c, 5)),
    tf.tensor(rand(c, 6).map((v) => 1.5 + v)),
  ]);
  const before = batchNormTrainingStats.calls;
  const tensors = tf.memory().numTensors;
  const loss = (xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx, { training: true }) as tf.Tensor, w));
  const trainable = layer.trainableWeights.map((v) => v.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => loss(x) as tf.Scalar, trainable);
  value.dispose();
  const dx = tf.grad(loss)(x);
  const y = layer.apply(x, { training: true }) as tf.Tensor;
  const out = {
    y: y.dataSync().slice(),
    dx: dx.dataSync().slice(),
    // [dgamma, dbeta], or [dbeta] without a scale
    dWeights: trainable.map((v) => grads[v.name].dataSync().slice()),
    // Three training calls so far: the moving statistics moved three times towards the batch's.
    moving: layer
      .getWeights()
      .slice(-2)
      .map((t) => t.dataSync().slice()),
    fused: batchNormTrainingStats.calls - before,
  };
  tf.dispose([y, dx, ...Object.values(grads)]);
  const leaked = tf.memory().numTensors - tensors;
  tf.dispose([x, w]);
  for (const v of layer.weights) v.dispose(); // the layer was never applied symbolically: dispose() refuses
  return { ...out, leaked };
}

describe('fused BatchNormalization training on wasm matches the cpu backend', () => {
  for (const shape of [
    [8, 16, 16, 32],
    [8, 40, 30, 6], // channels not a multiple of 4
    [256, 96], // after a Dense layer
  ]) {
    it(`${shape}`, async () => {
      const wasm = await runOn('wasm', shape);
      const cpu = await runOn('cpu', shape);
      expect(wasm.fused).toBe(3);
      expect(cpu.fused).toBe(0);
      expect(relErr(wasm.y, cpu.y)).toBeLessThanOrEqual(TOL);
      expect(relErr(wasm.dx, cpu.dx)).toBeLessThanOrEqual(TOL);
      expect(wasm.dWeights.length).toBe(2);
      for (let i = 0; i < 2; i++) expect(relErr(wasm.dWeights[i], cpu.dWeights[i])).toBeLessThanOrEqual(TOL);
      expect(relErr(wasm.moving[0], cpu.moving[0])).toBeLessThanOrEqual(TOL);
      expect(relErr(wasm.moving[1], cpu.moving[1])).toBeLessThanOrEqual(TOL);
      expect([wasm.leaked, cpu.leaked]).toEqual([0, 0]);
    });
  }

  it('scale: false (InceptionV3): no gamma, same results', async () => {
    const wasm = await runOn('wasm', [8, 16, 16, 32], false);
    const cpu = await runOn('cpu', [8, 16, 16, 32], false);
    expect(wasm.fused).toBe(3);
    expect(wasm.dWeights.length).toBe(1);
    expect(relErr(wasm.y, cpu.y)).toBeLessThanOrEqual(TOL);
    expect(relErr(wasm.dx, cpu.dx)).toBeLessThanOrEqual(TOL);
    expect(relErr(wasm.dWeights[0], cpu.dWeights[0])).toBeLessThanOrEqual(TOL);
    expect(relErr(wasm.moving[0], cpu.moving[0])).toBeLessThanOrEqual(TOL);
    expect(relErr(wasm.moving[1], cpu.moving[1])).toBeLessThanOrEqual(TOL);
    expect([wasm.leaked, cpu.leaked]).toEqual([0, 0]);
  });
});
