import { initBackend } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { buildHead, makeOptimizer } from '../src/index.js';

// The frozen-backbone heads train through the engine's own wasm kernels (Dense products, GeM, the
// one-pass optimizers): the same steps on the cpu backend (tfjs-core's kernels) are the reference.
const FEATURES: [number, number, number] = [4, 4, 64]; // 1024 inputs: the fc head's 1024x512 kernel
const CLASSES = 17;
const BATCH = 8;

/** Deterministic values in [0, 1) (post-ReLU features) from a seed. */
function uniform(size: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: size }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  });
}

/** Every weight after `steps` training steps of `head` with `optimizer`, and the losses, on a backend. */
async function train(
  backend: 'wasm' | 'cpu',
  head: 'fc' | 'gem',
  optimizer: 'rmsprop' | 'adam',
  steps: number,
): Promise<{ weights: Float32Array[]; losses: number[] }> {
  await initBackend(backend);
  const model = buildHead(FEATURES, head, CLASSES, { seed: 3 });
  const opt = makeOptimizer({ optimizer, lr: 1e-3 });
  const losses: number[] = [];
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  for (let step = 0; step < steps; step++) {
    const x = tf.tensor(uniform(BATCH * 1024, 10), [BATCH, ...FEATURES]);
    const y = tf.oneHot(
      tf.tensor1d(
        Array.from({ length: BATCH }, (_, i) => (i * 5) % CLASSES),
        'int32',
      ),
      CLASSES,
    );
    const loss = opt.minimize(
      () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      true,
      vars,
    );
    losses.push(loss!.dataSync()[0]);
    tf.dispose([x, y, loss!]);
  }
  const weights = model.getWeights().map((w) => w.dataSync() as Float32Array);
  model.dispose();
  opt.dispose();
  return { weights, losses };
}

const relErr = (a: Float32Array, b: Float32Array) => {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
};

describe('frozen-backbone heads train the same on wasm (engine kernels) as on cpu', () => {
  for (const [head, optimizer] of [
    ['fc', 'rmsprop'],
    ['fc', 'adam'],
    ['gem', 'rmsprop'],
  ] as const) {
    it(`${head} head, ${optimizer}: 4 steps, every weight and loss`, async () => {
      const cpu = await train('cpu', head, optimizer, 4);
      const wasm = await train('wasm', head, optimizer, 4);
      expect(wasm.weights.length).toBe(cpu.weights.length);
      // The loss falls on the repeated batch: training happens at all.
      expect(cpu.losses[3]).toBeLessThan(cpu.losses[0]);
      wasm.losses.forEach((l, i) =>
        expect(Math.abs(l - cpu.losses[i])).toBeLessThan(1e-4 * Math.abs(cpu.losses[i])),
      );
      // Products sum in another order (and GeM's powers use other approximations): rounding-level
      // differences, amplified by RMSprop's g/√ms on near-zero gradients, stay far below a step (1e-3).
      wasm.weights.forEach((w, i) => expect(relErr(w, cpu.weights[i])).toBeLessThan(1e-3));
    });
  }
});
