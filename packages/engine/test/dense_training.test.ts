import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  adamStats,
  denseGemmStats,
  gemPool,
  gemStats,
  initBackend,
  kerasRmspropStep,
  rmspropStats,
  useOnePassAdam,
} from '../src/index.js';
import { maxAbs, rand, relErr, runKernelOn } from './helpers.js';

// The Dense-layer training kernels of wasm/dense.c (conv pool): matrix products, Adam, GeM. Both vitest
// projects run this file: the threaded build (every core) and the one-thread build (engine-1-thread).
const TOL = 1e-5;
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

beforeAll(async () => {
  await initBackend('cpu');
  await initBackend('wasm');
});

describe('Dense products on the conv pool (gemm nn / tn / nt) match the cpu backend', () => {
  // Rows, depths and columns off the 4/16 blocking, a depth over the 256 block, a Flatten(7x7x64) ->
  // Dense(512) head at batch 32, and its kernel gradient xᵀ·dy (transposeA).
  const cases: { a: number[]; b: number[]; tA: boolean; tB: boolean; kind: 'nn' | 'tn' | 'nt' }[] = [
    { a: [5, 301], b: [301, 235], tA: false, tB: false, kind: 'nn' },
    { a: [32, 3136], b: [3136, 512], tA: false, tB: false, kind: 'nn' },
    { a: [7, 262], b: [271, 262], tA: false, tB: true, kind: 'nt' },
    { a: [9, 1031], b: [83, 1031], tA: false, tB: true, kind: 'nt' },
    { a: [32, 3136], b: [32, 512], tA: true, tB: false, kind: 'tn' },
    { a: [7, 1031], b: [7, 83], tA: true, tB: false, kind: 'tn' },
    { a: [1, 602], b: [1, 301], tA: true, tB: false, kind: 'tn' },
  ];
  cases.forEach(({ a, b, tA, tB, kind }, i) => {
    it(`${kind}: ${a} x ${b} transposeA=${tA} transposeB=${tB}`, async () => {
      const inputs = {
        a: { shape: a, data: rand(size(a), 1650 + i) },
        b: { shape: b, data: rand(size(b), 1750 + i) },
      };
      const attrs = { transposeA: tA, transposeB: tB };
      const cpu = await runKernelOn('cpu', 'BatchMatMul', inputs, attrs);
      const before = denseGemmStats[kind];
      const wasm = await runKernelOn('wasm', 'BatchMatMul', inputs, attrs);
      expect(denseGemmStats[kind]).toBe(before + 1);
      expect(wasm.shape).toEqual(cpu.shape);
      expect(maxAbs(cpu.data)).toBeGreaterThan(0.1);
      expect(relErr(wasm.data, cpu.data)).toBeLessThanOrEqual(TOL);
    });
  });
});

describe('_FusedMatMul (a Dense layer outside training) takes the same products, then bias and activation', () => {
  const cases: { a: number[]; b: number[]; tB: boolean; activation: string; bias: boolean }[] = [
    { a: [32, 3136], b: [3136, 512], tB: false, activation: 'relu', bias: true },
    { a: [5, 301], b: [301, 235], tB: false, activation: 'linear', bias: false },
    { a: [9, 1031], b: [83, 1031], tB: true, activation: 'sigmoid', bias: true },
    { a: [3, 700], b: [700, 97], tB: false, activation: 'leakyrelu', bias: true },
  ];
  cases.forEach(({ a, b, tB, activation, bias }, i) => {
    it(`${a} x ${b} transposeB=${tB} ${activation}${bias ? ' + bias' : ''}`, async () => {
      const n = tB ? b[0] : b[1];
      const inputs = {
        a: { shape: a, data: rand(size(a), 1850 + i) },
        b: { shape: b, data: rand(size(b), 1950 + i) },
        ...(bias ? { bias: { shape: [n], data: rand(n, 2050 + i) } } : {}),
      };
      const attrs = { transposeA: false, transposeB: tB, activation, leakyreluAlpha: 0.1 };
      const cpu = await runKernelOn('cpu', '_FusedMatMul', inputs, attrs);
      const before = denseGemmStats[tB ? 'nt' : 'nn'];
      const wasm = await runKernelOn('wasm', '_FusedMatMul', inputs, attrs);
      expect(denseGemmStats[tB ? 'nt' : 'nn']).toBe(before + 1);
      expect(wasm.shape).toEqual(cpu.shape);
      expect(maxAbs(cpu.data)).toBeGreaterThan(0.1);
      expect(relErr(wasm.data, cpu.data)).toBeLessThanOrEqual(TOL);
    });
  });
});

/** Adam's state after `steps` updates of the given weights with the given gradients, on a backend. */
async function adamRun(
  backend: 'wasm' | 'cpu',
  onePass: boolean,
  shapes: number[][],
  steps: number,
): Promise<Float32Array[]> {
  await initBackend(backend);
  useOnePassAdam(onePass);
  try {
    const vars = shapes.map((s, i) =>
      tf.variable(tf.tensor(rand(size(s), 70 + i), s), true, `adam_w${i}_${backend}`),
    );
    const opt = tf.train.adam(1e-2, 0.9, 0.999, 1e-7);
    for (let step = 0; step < steps; step++) {
      const grads = shapes.map((s, i) => ({
        name: vars[i].name,
        // Gradients spanning magnitudes, zeros included (a ReLU's dead units).
        tensor: tf.tidy(() => tf.mul(tf.relu(tf.tensor(rand(size(s), 90 + 7 * step + i), s)), 10 ** (i - 2))),
      }));
      opt.applyGradients(grads);
      tf.dispose(grads.map((g) => g.tensor));
    }
    const state = await opt.getWeights();
    const out = [
      ...vars.map((v) => v.dataSync() as Float32Array),
      ...state.slice(1).map((w) => w.tensor.dataSync() as Float32Array),
    ];
    opt.dispose();
    tf.dispose(vars);
    return out;
  } finally {
    useOnePassAdam(true);
  }
}

describe('Adam in one pass (wasm/dense.c adam_update)', () => {
  // Sizes across the 4096-element work blocks, one not a multiple of 4, a scalar.
  const shapes = [[37, 301], [301], [3], [1]];

  it("is bit for bit tfjs-core's AdamOptimizer on the cpu backend, moments included", async () => {
    const cpu = await adamRun('cpu', true, shapes, 3);
    const before = adamStats.updates;
    const wasm = await adamRun('wasm', true, shapes, 3);
    expect(adamStats.updates).toBe(before + 3 * shapes.length);
    expect(wasm.length).toBe(3 * shapes.length);
    wasm.forEach((w, i) => {
      expect(maxAbs(w)).toBeGreaterThan(0); // (the second moments of the smallest gradients are tiny)
      expect(Array.from(w)).toEqual(Array.from(cpu[i]));
    });
  });

  it('the stock optimizer on wasm gives the same bits (the A/B switch works)', async () => {
    const before = adamStats.updates;
    const stock = await adamRun('wasm', false, shapes, 2);
    expect(adamStats.updates).toBe(before);
    const onePass = await adamRun('wasm', true, shapes, 2);
    onePass.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(stock[i])));
  });
});

/** Weights and mean squares after `steps` Keras RMSprop steps (lr 1e-3, ρ 0.9, ε 1e-7) on a backend. */
async function rmspropRun(
  backend: 'wasm' | 'cpu',
  shapes: number[][],
  steps: number,
): Promise<Float32Array[]> {
  await initBackend(backend);
  const w = shapes.map((s, i) => tf.variable(tf.tensor(rand(size(s), 170 + i), s), true));
  const ms = shapes.map((s) => tf.variable(tf.zeros(s), false));
  for (let step = 0; step < steps; step++) {
    shapes.forEach((s, i) => {
      const g = tf.tidy(() =>
        tf.mul(tf.relu(tf.tensor(rand(size(s), 190 + 7 * step + i), s)), 10 ** (i - 2)),
      );
      kerasRmspropStep(w[i], g, ms[i], { learningRate: 1e-3 * (step + 1), rho: 0.9, epsilon: 1e-7 });
      g.dispose();
    });
  }
  const out = [...w, ...ms].map((v) => v.dataSync() as Float32Array);
  tf.dispose([...w, ...ms]);
  return out;
}

describe('Keras RMSprop in one pass (wasm/dense.c rmsprop_update)', () => {
  it('is bit for bit the tfjs ops on the cpu backend, mean squares included', async () => {
    const shapes = [[37, 301], [301], [3]];
    const cpu = await rmspropRun('cpu', shapes, 3);
    const before = rmspropStats.updates;
    const wasm = await rmspropRun('wasm', shapes, 3);
    expect(rmspropStats.updates).toBe(before + 3 * shapes.length);
    wasm.forEach((w, i) => {
      expect(maxAbs(w)).toBeGreaterThan(0);
      expect(Array.from(w)).toEqual(Array.from(cpu[i]));
    });
  });
});

/** GeM output and gradients (x and p) on a backend, from tf.grads. */
async function gemRun(
  backend: 'wasm' | 'cpu',
  shape: [number, number, number, number],
  p: number,
): Promise<{ y: Float32Array; dx: Float32Array; dp: Float32Array }> {
  await initBackend(backend);
  return tf.tidy(() => {
    // Activations in [-0.5, 1.5): a quarter below GeM's floor (no gradient there).
    const x = tf.add(tf.tensor(rand(size(shape), 31), shape), 0.5) as tf.Tensor4D;
    const pt = tf.tensor1d([p]);
    const w = tf.tensor(rand(shape[0] * shape[3], 32), [shape[0], shape[3]]);
    const f = (xs: tf.Tensor, ps: tf.Tensor) => tf.sum(tf.mul(gemPool(xs as tf.Tensor4D, ps), w));
    const [dx, dp] = tf.grads(f)([x, pt]);
    return {
      y: gemPool(x, pt).dataSync() as Float32Array,
      dx: dx.dataSync() as Float32Array,
      dp: dp.dataSync() as Float32Array,
    };
  });
}

describe('GeM pooling in one pass (wasm/dense.c gem_forward / gem_backward)', () => {
  const cases: { shape: [number, number, number, number]; p: number }[] = [
    { shape: [3, 4, 5, 10], p: 3 }, // channels off the 4 lanes
    { shape: [4, 7, 7, 16], p: 2.5 },
    { shape: [2, 1, 2, 5], p: 1 },
  ];
  for (const { shape, p } of cases) {
    it(`${shape} p=${p}: output, input and exponent gradients match tfjs-core's pow ops on cpu`, async () => {
      const cpu = await gemRun('cpu', shape, p);
      const before = { ...gemStats };
      const wasm = await gemRun('wasm', shape, p);
      expect(gemStats.forward).toBeGreaterThan(before.forward);
      expect(gemStats.backward).toBe(before.backward + 1);
      expect(maxAbs(cpu.dx)).toBeGreaterThan(1e-3);
      expect(Math.abs(cpu.dp[0])).toBeGreaterThan(1e-3);
      expect(relErr(wasm.y, cpu.y)).toBeLessThanOrEqual(TOL);
      expect(relErr(wasm.dx, cpu.dx)).toBeLessThanOrEqual(TOL);
      expect(relErr(wasm.dp, cpu.dp)).toBeLessThanOrEqual(TOL);
      // Below the floor: no gradient, as tfjs's maximum gives none to the smaller side.
      const x = rand(size(shape), 31);
      x.forEach((v, i) => {
        if (v + 0.5 < 1e-6) expect(wasm.dx[i]).toBe(0);
      });
    });
  }

  it('frees what it makes (forward, and forward + backward)', async () => {
    await initBackend('wasm');
    const x = tf.randomUniform([2, 3, 3, 8]) as tf.Tensor4D;
    const p = tf.tensor1d([3]);
    const step = () => {
      tf.dispose(gemPool(x, p));
      tf.dispose(tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(gemPool(a as tf.Tensor4D, b)))([x, p]));
    };
    const before = tf.memory().numTensors;
    step();
    step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, p]);
  });
});
