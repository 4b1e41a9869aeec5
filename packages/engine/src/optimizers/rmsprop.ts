import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { convPool } from '../kernels/conv_pool.js';
import { asWasmBackend } from '../kernels/util.js';

/**
 * One step of RMSprop as Keras computes it (core's KerasRMSprop, the product's default optimizer), for one
 * weight: ms ← ρ·ms + (1 − ρ)·g², w ← w − lr·g / (√ms + ε). On wasm one pass on the conv pool
 * (wasm/dense.c rmsprop_update) instead of 8 kernels, each operation rounded in float32 in the order of
 * the ops below (bit for bit the same); elsewhere those ops.
 */
export const RMSPROP_UPDATE = 'HeadbenchRmspropUpdate';

/** Weights updated by the one-pass kernel (tests check which path ran). */
export const rmspropStats = { updates: 0 };

interface RmspropAttrs {
  rho: number;
  oneMinusRho: number;
  learningRate: number;
  epsilon: number;
}

export const rmspropUpdateConfig: KernelConfig = {
  kernelName: RMSPROP_UPDATE,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { w, g, ms } = inputs as Record<'w' | 'g' | 'ms', TensorInfo>;
    const wasm = asWasmBackend(backend);
    const outs = [w, ms].map((t) => wasm.makeOutput(t.shape, 'float32'));
    // Views after every allocation: growing an unshared heap detaches older ones.
    const view = (t: TensorInfo) => wasm.typedArrayFromHeap(t) as Float32Array;
    convPool().rmspropUpdate(
      view(w),
      view(g),
      view(ms),
      { w: view(outs[0]), ms: view(outs[1]) },
      attrs as unknown as RmspropAttrs,
    );
    rmspropStats.updates++;
    return outs;
  },
};

let registered = false;

/** Updates `value` and its mean-square slot `ms` in place (tf.Variable.assign) with gradient `g`. */
export function kerasRmspropStep(
  value: tf.Variable,
  gradient: tf.Tensor,
  ms: tf.Variable,
  options: { learningRate: number; rho: number; epsilon: number },
): void {
  const { learningRate, rho, epsilon } = options;
  const onePass =
    tf.getBackend() === 'wasm' &&
    value.dtype === 'float32' &&
    gradient.dtype === 'float32' &&
    gradient.size === value.size &&
    ms.size === value.size;
  tf.tidy(() => {
    if (!onePass) {
      const next = tf.add(tf.mul(ms, rho), tf.mul(tf.square(gradient), 1 - rho));
      ms.assign(next);
      value.assign(tf.sub(value, tf.div(tf.mul(gradient, learningRate), tf.add(tf.sqrt(next), epsilon))));
      return;
    }
    if (!registered) {
      if (tf.getKernel(RMSPROP_UPDATE, 'wasm') == null) tf.registerKernel(rmspropUpdateConfig);
      registered = true;
    }
    // The scalars as the ops above make them: float32 tensors of the JS numbers.
    const f = Math.fround;
    const attrs: RmspropAttrs = {
      rho: f(rho),
      oneMinusRho: f(1 - rho),
      learningRate: f(learningRate),
      epsilon: f(epsilon),
    };
    const [w2, ms2] = tf
      .engine()
      .runKernel(
        RMSPROP_UPDATE,
        { w: value, g: gradient, ms },
        attrs as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
    ms.assign(ms2);
    value.assign(w2);
  });
}
