import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { convPool } from '../kernels/conv_pool.js';
import { asWasmBackend } from '../kernels/util.js';

/**
 * Adam in one pass per weight on wasm. tfjs-core's AdamOptimizer updates each weight with ~12 kernels
 * (mul, add, square, div, sqrt, ...), each a full pass over the weight and a new temporary: for a
 * 25088x512 Dense kernel that is ~1/3 of a frozen fc head's step. Here one kernel (wasm/dense.c,
 * adam_update, every thread of the conv pool) reads (w, g, m, v) once and writes the three new tensors,
 * with tfjs's operations in tfjs's order in float32, so results are bit for bit the stock optimizer's.
 * Off wasm (or for a non-float32 weight) the stock method runs.
 */
export const ADAM_UPDATE = 'HeadbenchAdamUpdate';

/** Weights updated by the one-pass kernel (tests check which path ran). */
export const adamStats = { updates: 0 };

interface AdamAttrs {
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  correction1: number;
  correction2: number;
  epsilon: number;
  learningRate: number;
}

export const adamUpdateConfig: KernelConfig = {
  kernelName: ADAM_UPDATE,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { w, g, m, v } = inputs as Record<'w' | 'g' | 'm' | 'v', TensorInfo>;
    const wasm = asWasmBackend(backend);
    const outs = [w, m, v].map((t) => wasm.makeOutput(t.shape, 'float32'));
    // Views after every allocation: growing an unshared heap detaches older ones.
    const view = (t: TensorInfo) => wasm.typedArrayFromHeap(t) as Float32Array;
    convPool().adamUpdate(
      view(w),
      view(g),
      view(m),
      view(v),
      { w: view(outs[0]), m: view(outs[1]), v: view(outs[2]) },
      attrs as unknown as AdamAttrs,
    );
    adamStats.updates++;
    return outs;
  },
};

/** The AdamOptimizer fields applyGradients uses (tfjs-core 4.22; private there). */
interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
  incrementIterations(): void;
}
type NamedGradient = { name: string; tensor: tf.Tensor };
type ApplyGradients = (this: AdamInternals, grads: tf.NamedTensorMap | NamedGradient[]) => void;

let stock: ApplyGradients | null = null;

function onePass(this: AdamInternals, grads: tf.NamedTensorMap | NamedGradient[]): void {
  const names = Array.isArray(grads) ? grads.map((g) => g.name) : Object.keys(grads);
  const gradientOf = (name: string, i: number) =>
    Array.isArray(grads) ? grads[i].tensor : (grads as tf.NamedTensorMap)[name];
  const variables = tf.engine().registeredVariables;
  const fits = names.every((name, i) => {
    const g = gradientOf(name, i);
    const w = variables[name];
    return g == null || (w?.dtype === 'float32' && g.dtype === 'float32' && g.size === w.size);
  });
  if (tf.getBackend() !== 'wasm' || !fits) {
    stock!.call(this, grads);
    return;
  }
  // tfjs computes sub(1, accBeta) in float32: fround of the double difference is that same number.
  const f = Math.fround;
  const attrs: AdamAttrs = {
    beta1: f(this.beta1),
    oneMinusBeta1: f(1 - this.beta1),
    beta2: f(this.beta2),
    oneMinusBeta2: f(1 - this.beta2),
    correction1: f(1 - this.accBeta1.dataSync()[0]),
    correction2: f(1 - this.accBeta2.dataSync()[0]),
    epsilon: f(this.epsilon),
    learningRate: f(this.learningRate),
  };
  tf.tidy(() => {
    names.forEach((name, i) => {
      const value = variables[name];
      // Slots as tfjs makes them (names and order matter to getWeights / setWeights).
      this.accumulatedFirstMoment[i] ??= {
        originalName: `${name}/m`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      };
      this.accumulatedSecondMoment[i] ??= {
        originalName: `${name}/v`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      };
      const gradient = gradientOf(name, i);
      if (gradient == null) return;
      const m = this.accumulatedFirstMoment[i].variable;
      const v = this.accumulatedSecondMoment[i].variable;
      const [w2, m2, v2] = tf
        .engine()
        .runKernel(
          ADAM_UPDATE,
          { w: value, g: gradient, m, v },
          attrs as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
      m.assign(m2);
      v.assign(v2);
      value.assign(w2);
    });
    this.accBeta1.assign(tf.mul(this.accBeta1, this.beta1));
    this.accBeta2.assign(tf.mul(this.accBeta2, this.beta2));
  });
  this.incrementIterations();
}

/**
 * Installs the one-pass update on tfjs-core's AdamOptimizer (every instance; it takes effect on wasm),
 * or with `on` false restores the stock method (benchmarks' A/B, tests). Idempotent.
 */
export function useOnePassAdam(on = true): void {
  const proto = tf.AdamOptimizer.prototype as unknown as { applyGradients: ApplyGradients };
  if (stock === null) {
    stock = proto.applyGradients;
    if (tf.getKernel(ADAM_UPDATE, 'wasm') == null) tf.registerKernel(adamUpdateConfig);
  }
  proto.applyGradients = on ? onePass : stock;
}
