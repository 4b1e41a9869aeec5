import * as tf from '@tensorflow/tfjs-core';
import { convPool } from '../kernels/conv_pool.js';
import { asWasmBackend } from '../kernels/util.js';

/** GeM's floor on activations before the power (timm's and Radenović et al.'s 1e-6). */
export const GEM_EPSILON = 1e-6;

/** GeM poolings that took the one-pass kernels (tests check which path ran). */
export const gemStats = { forward: 0, backward: 0 };

/**
 * Generalised-mean pooling over H×W of NHWC x: (mean over H, W of max(x, eps)^p)^(1/p), p a trainable
 * [1] (or scalar) tensor; [N, C] out. On wasm one pass forward and one backward on the conv pool
 * (wasm/dense.c gem_forward / gem_backward: tfjs's pow ops took a slow broadcasting path, ~2/3 of a GeM
 * head's step); elsewhere tfjs-core's ops, whose gradients are the reference the kernels are tested on.
 */
export function gemPool(x: tf.Tensor4D, p: tf.Tensor, eps = GEM_EPSILON): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || p.size !== 1) {
    return tf.tidy(() => tf.pow(tf.mean(tf.pow(tf.maximum(x, eps), p), [1, 2]), tf.div(1, p))) as tf.Tensor2D;
  }
  const wasm = asWasmBackend(tf.backend());
  const heap = (t: tf.TensorInfo) => wasm.typedArrayFromHeap(t) as Float32Array;
  const [n, h, w, c] = x.shape;
  const dims = { n, hw: h * w, c };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, pIn] = args as tf.Tensor[];
    const save = args[2] as tf.GradSaveFunc;
    const power = heap(pIn)[0];
    const [y, s, t] = [0, 1, 2].map(() => wasm.makeOutput([n, c], 'float32'));
    // xc^p per element, for the backward pass (xc^(p-1) = e / xc): no second log and exp.
    const e = wasm.makeOutput(xIn.shape, 'float32');
    convPool().gemForward(heap(xIn), power, eps, dims, { y: heap(y), s: heap(s), t: heap(t), e: heap(e) });
    gemStats.forward++;
    const [yT, sT, tT, eT] = [y, s, t, e].map((info) => tf.engine().makeTensorFromTensorInfo(info));
    save([xIn, pIn, yT, sT, tT, eT]);
    return {
      value: yT,
      gradFunc: (dy, saved) => {
        const [xs, ps, ys, ss, ts, es] = saved;
        const dyT = Array.isArray(dy) ? dy[0] : dy;
        const dx = wasm.makeOutput(xs.shape, 'float32');
        const dp = convPool().gemBackward(
          heap(xs),
          heap(ps)[0],
          eps,
          dims,
          { dy: heap(dyT), y: heap(ys), s: heap(ss), t: heap(ts), e: heap(es) },
          heap(dx),
        );
        gemStats.backward++;
        return [tf.engine().makeTensorFromTensorInfo(dx), tf.fill(ps.shape, dp)];
      },
    };
  });
  // s, t and e are no outputs: customGrad's forward runs in a tidy, the tape keeps its own copies.
  return op(x, p) as tf.Tensor2D;
}
