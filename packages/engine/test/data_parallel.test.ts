import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDataParallelTrainer, type DataParallelTrainer, initBackend } from '../src/index.js';
import { maxAbs, rand, relErr } from './helpers.js';
import { smallCnn } from './models.js';

const SIZE = 12;
const CLASSES = 3;

/** No BatchNorm or dropout: a data-parallel step must then equal one full-batch step exactly (in f32). */
function plainNet(): tfl.LayersModel {
  const m = tfl.sequential();
  m.add(tfl.layers.conv2d({ filters: 6, kernelSize: 3, activation: 'relu', inputShape: [SIZE, SIZE, 3] }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: CLASSES, activation: 'softmax' }));
  return m;
}

function batch(n: number, seed: number): { x: tf.Tensor; y: tf.Tensor } {
  const x = tf.tensor(rand(n * SIZE * SIZE * 3, seed), [n, SIZE, SIZE, 3]);
  const labels = Array.from({ length: n }, (_, i) => (i * 7 + seed) % CLASSES);
  return { x, y: tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES) };
}

let trainer: DataParallelTrainer | null = null;
beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(async () => {
  await trainer?.dispose();
});

describe('createDataParallelTrainer', () => {
  it('two replicas on uneven slices take the same SGD steps as one full-batch process', async () => {
    const model = plainNet();
    const before = model.weights.map((w) => w.read().dataSync().slice() as Float32Array);
    // Reference: the full batch, one process, the same loss (Keras categorical cross-entropy).
    const ref = plainNet();
    ref.setWeights(model.weights.map((w) => w.read().clone()));
    const opt = tf.train.sgd(0.5);
    const refLosses: number[] = [];
    const batches = [batch(7, 1), batch(7, 2)];
    for (const { x, y } of batches) {
      refLosses.push(
        tf.tidy(
          () =>
            opt
              .minimize(() => {
                const p = tf.clipByValue(ref.apply(x) as tf.Tensor, 1e-7, 1 - 1e-7);
                return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(p)), -1))) as tf.Scalar;
              }, true)!
              .dataSync()[0],
        ),
      );
    }
    trainer = await createDataParallelTrainer(model, {
      workers: 2,
      optimizer: { name: 'sgd', learningRate: 0.5 },
    });
    const losses: number[] = [];
    for (const { x, y } of batches) losses.push(await trainer.step(x, y));
    const after = await trainer.getWeights();
    await trainer.syncToModel();
    for (let i = 0; i < 2; i++) expect(Math.abs(losses[i] - refLosses[i]) / refLosses[i]).toBeLessThan(1e-5);
    expect(refLosses[1]).not.toBe(refLosses[0]);
    ref.weights.forEach((w, i) => {
      const refDelta = (w.read().dataSync() as Float32Array).map((v, k) => v - before[i][k]);
      const dpDelta = after[i].map((v, k) => v - before[i][k]);
      expect(maxAbs(refDelta)).toBeGreaterThan(1e-4);
      expect(relErr(dpDelta, refDelta)).toBeLessThanOrEqual(1e-4);
      // syncToModel wrote them back.
      expect(Array.from(model.weights[i].read().dataSync())).toEqual(Array.from(after[i]));
    });
    tf.dispose(batches.flatMap((b) => [b.x, b.y]));
    model.dispose();
    ref.dispose();
  });

  it('trains a BatchNorm net (smallcnn): loss goes down, BN moving statistics are updated', async () => {
    await trainer?.dispose();
    const model = smallCnn(16, 4);
    trainer = await createDataParallelTrainer(model, {
      workers: 2,
      optimizer: { name: 'adam', learningRate: 1e-2 },
    });
    const x = tf.tensor(rand(8 * 16 * 16 * 3, 5), [8, 16, 16, 3]);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32'), 4);
    const losses: number[] = [];
    for (let i = 0; i < 8; i++) losses.push(await trainer.step(x, y));
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[7]).toBeLessThan(losses[0] * 0.7);
    const w = await trainer.getWeights();
    const movingMean = model.weights.findIndex((v) => v.name.includes('moving_mean'));
    expect(movingMean).toBeGreaterThanOrEqual(0);
    expect(maxAbs(w[movingMean])).toBeGreaterThan(0);
    tf.dispose([x, y]);
    model.dispose();
  });
});
