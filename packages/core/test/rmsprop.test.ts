import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { learningRateAt, makeOptimizer, setLearningRate } from '../src/index.js';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'headbench-rmsprop-'));
  await initBackend('wasm');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const config = { optimizer: 'rmsprop' as const, lr: 0.01, decay: 0.05 };
const w0 = [0.5, -1.25, 2, 0.003];
// Gradients of very different sizes, so ε's place (inside or outside √) shows: 1e-5 is where they differ most.
const grads = [
  [0.1, -2, 1e-5, 3e-4],
  [-0.3, 1.5, 2e-5, -1e-4],
  [0.05, -0.5, -1e-5, 2e-4],
  [0.2, 0.25, 3e-5, 5e-4],
];

/** Keras's RMSprop written out in double precision: the reference the tensors must follow. */
function kerasSteps(steps: number): number[] {
  const w = [...w0];
  const ms = w.map(() => 0);
  for (let t = 0; t < steps; t++) {
    const lr = config.lr / (1 + config.decay * t);
    for (let i = 0; i < w.length; i++) {
      const g = grads[t][i];
      ms[i] = 0.9 * ms[i] + 0.1 * g * g;
      w[i] -= (lr * g) / (Math.sqrt(ms[i]) + 1e-7);
    }
  }
  return w;
}

function step(opt: tf.Optimizer, v: tf.Variable, t: number): void {
  setLearningRate(opt, learningRateAt(config, t));
  const g = tf.tensor1d(grads[t]);
  opt.applyGradients([{ name: v.name, tensor: g }]);
  g.dispose();
}

describe('rmsprop follows Keras', () => {
  it('four steps with time decay match ms = ρ·ms + (1−ρ)·g², w −= lr_t·g/(√ms + ε)', async () => {
    const v = tf.variable(tf.tensor1d(w0));
    const opt = makeOptimizer(config);
    for (let t = 0; t < 4; t++) {
      step(opt, v, t);
      const got = Array.from(await v.data());
      const want = kerasSteps(t + 1);
      for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 5);
    }
    // The tiny-gradient weight moved like Keras's: a step of ~lr, not lr·g/√ε (tfjs's variant).
    expect(Math.abs((await v.data())[2] - w0[2])).toBeGreaterThan(0.01);
    opt.dispose();
    v.dispose();
  });

  it("rmsprop-tfjs keeps tfjs's own update (ε inside the square root) under its own name", async () => {
    const v = tf.variable(tf.tensor1d(w0));
    const opt = makeOptimizer({ ...config, optimizer: 'rmsprop-tfjs' });
    step(opt, v, 0);
    const got = Array.from(await v.data());
    const ms = grads[0].map((g) => 0.1 * g * g);
    grads[0].forEach((g, i) => {
      expect(got[i]).toBeCloseTo(w0[i] - (config.lr * g) / Math.sqrt(ms[i] + 1e-7), 5);
    });
    opt.dispose();
    v.dispose();
  });

  it('resumes from a checkpoint bit for bit', async () => {
    const straight = tf.variable(tf.tensor1d(w0));
    const a = makeOptimizer(config);
    for (let t = 0; t < 4; t++) step(a, straight, t);

    const first = tf.variable(tf.tensor1d(w0));
    const b = makeOptimizer(config);
    for (let t = 0; t < 2; t++) step(b, first, t);
    const dir = join(tmp, 'ckpt');
    const state = {
      configHash: 'x',
      epoch: 1,
      step: 2,
      history: [],
      best: { value: 0, epoch: 1, wait: 0 },
      elapsed: 0,
    };
    await saveCheckpoint(dir, state, [first], b);
    b.dispose();

    const resumed = tf.variable(tf.zeros([4]));
    const c = makeOptimizer(config);
    await loadCheckpoint(dir, [{ write: (t) => resumed.assign(t), shape: resumed.shape }], c);
    expect(c.iterations).toBe(2);
    for (let t = 2; t < 4; t++) step(c, resumed, t);
    expect(Array.from(await resumed.data())).toEqual(Array.from(await straight.data()));
    tf.dispose([straight, first, resumed]);
    a.dispose();
    c.dispose();
  });

  it('resumes Adam bit for bit: its bias-correction powers travel in the checkpoint', async () => {
    // Adam's β^t products, rebuilt on load as pow(β, t + 1), differ in the last bits after a few steps.
    const adam = { optimizer: 'adam' as const, lr: 0.01 };
    const adamStep = (opt: tf.Optimizer, v: tf.Variable, t: number) => {
      const g = tf.tensor1d(grads[t % grads.length].map((x) => x * (1 + t / 7)));
      opt.applyGradients([{ name: v.name, tensor: g }]);
      g.dispose();
    };
    const total = 40;
    const at = 23;
    const straight = tf.variable(tf.tensor1d(w0));
    const a = makeOptimizer(adam);
    for (let t = 0; t < total; t++) adamStep(a, straight, t);
    const first = tf.variable(tf.tensor1d(w0));
    const b = makeOptimizer(adam);
    for (let t = 0; t < at; t++) adamStep(b, first, t);
    const dir = join(tmp, 'ckpt-adam');
    const state = {
      configHash: 'x',
      epoch: 1,
      step: at,
      history: [],
      best: { value: 0, epoch: 1, wait: 0 },
      elapsed: 0,
    };
    await saveCheckpoint(dir, state, [first], b);
    b.dispose();
    const resumed = tf.variable(tf.zeros([4]));
    const c = makeOptimizer(adam);
    await loadCheckpoint(dir, [{ write: (t) => resumed.assign(t), shape: resumed.shape }], c);
    for (let t = at; t < total; t++) adamStep(c, resumed, t);
    expect(Array.from(await resumed.data())).toEqual(Array.from(await straight.data()));
    tf.dispose([straight, first, resumed]);
    a.dispose();
    c.dispose();
  });
});
