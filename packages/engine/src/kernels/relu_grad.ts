import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';
import { convPool } from './conv_pool.js';
import { asWasmBackend } from './util.js';

/**
 * ReLU and ReLU6 gradients in one pass. tfjs-core computes them as mul(dy, cast(step(x))) (and a
 * lessEqual for ReLU6): three or four full-size passes and temporaries after every conv-BN-ReLU, ~10%
 * of a small conv net's step on wasm. Here: one SIMD pass on the conv pool's threads (wasm/training.c,
 * relu_grad). The gradients stay registered on every backend; off wasm they compute what tfjs-core does.
 */
export const RELU_GRAD = 'HeadbenchReluGrad';

/** Gradients that took the one-pass kernel (tests check which path ran). */
export const reluGradStats = { calls: 0 };

export const reluGradConfig: KernelConfig = {
  kernelName: RELU_GRAD,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const wasm = asWasmBackend(backend);
    const out = wasm.makeOutput(x.shape, 'float32');
    reluGradStats.calls++;
    convPool().reluGrad(
      wasm.typedArrayFromHeap(x) as Float32Array,
      wasm.typedArrayFromHeap(dy) as Float32Array,
      wasm.typedArrayFromHeap(out) as Float32Array,
      (attrs as { six?: boolean }).six === true,
    );
    return out;
  },
};

function grad(dy: tf.Tensor, x: tf.Tensor, six: boolean): tf.Tensor {
  if (tf.getBackend() === 'wasm' && x.dtype === 'float32' && dy.dtype === 'float32') {
    return tf.engine().runKernel(RELU_GRAD, { x, dy }, { six }) as tf.Tensor;
  }
  // tfjs-core's own formulas.
  const mask = six ? tf.mul(tf.lessEqual(x, 6), tf.step(x)) : tf.step(x);
  return tf.mul(dy, tf.cast(mask, 'float32'));
}

let stockGradients: tf.GradConfig[] | null = null;

/**
 * Registers the kernel on wasm and the Relu / Relu6 gradients that use it; with `on` false, tfjs-core's
 * own gradients again (benchmarks' A/B). Idempotent.
 */
export function useOnePassReluGradients(on = true): void {
  if (stockGradients === null) {
    // (None when no tfjs gradients are registered at all: initBackend has warned about that.)
    stockGradients = ['Relu', 'Relu6'].flatMap((name) => tf.getGradient(name) ?? []);
    if (tf.getKernel(RELU_GRAD, 'wasm') == null) tf.registerKernel(reluGradConfig);
    // Second order (a gradient of a gradient): linear in dy through the same mask, flat in x.
    tf.registerGradient({
      kernelName: RELU_GRAD,
      inputsToSave: ['x'],
      gradFunc: (ddx, saved, attrs) => {
        const [x] = saved;
        const six = (attrs as { six?: boolean }).six === true;
        return { dy: () => grad(ddx as tf.Tensor, x, six), x: () => tf.zerosLike(x) };
      },
    });
  }
  if (!on) {
    for (const config of stockGradients) tf.registerGradient(config);
    return;
  }
  for (const [kernelName, six] of [
    ['Relu', false],
    ['Relu6', true],
  ] as const) {
    tf.registerGradient({
      kernelName,
      inputsToSave: ['x'],
      gradFunc: (dy, saved) => ({ x: () => grad(dy as tf.Tensor, saved[0], six) }),
    });
  }
}
