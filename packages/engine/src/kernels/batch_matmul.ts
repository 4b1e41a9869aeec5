import * as tf from '@tensorflow/tfjs-core';
import {
  type BatchMatMulAttrs,
  broadcast_util,
  engine,
  type KernelFunc,
  type Tensor,
  type TensorInfo,
  util,
} from '@tensorflow/tfjs-core';
import { asTensor, asWasmBackend } from './util.js';
import { gemm } from './wasm_kernels.js';

/** Matrices smaller than this (m*k*n) stay on the stock kernel: a per-matrix loop would cost more. */
const LOOP_MIN_WORK = 32 * 32 * 32;
/**
 * Own packing-free kernels (wasm_kernels.ts) for a right-hand matrix of at least this many elements...
 * XNNPACK repacks a right-hand matrix it has not seen at ~25 ns/element (0.35 s for a 25088x512 Dense
 * kernel), which dominates whenever few rows multiply it (m small: Dense layers at training batch sizes).
 */
const OWN_GEMM_MIN_B = 1 << 16;
/** ...and at most this many rows: beyond it XNNPACK's two-threaded arithmetic wins back the packing. */
const OWN_GEMM_MAX_M = 128;
/**
 * Right-hand matrices (by dataId) already multiplied once. Stock wasm caches its packed copy of a B it
 * has multiplied (until B is disposed), so a B that comes back (inference weights) goes to the stock
 * kernel from its second use on; training weights are new tensors every step and never come back.
 */
const seenB = new WeakSet<object>();

/**
 * Stock wasm BatchMatMul reaches XNNPACK only for a single plain A x B; with transposeA / transposeB
 * or a batch of matrices it runs a naive loop about 10x slower. Dense-layer gradients hit exactly
 * those cases (x^T dy and dy W^T). We transpose explicitly (a fast copy) and multiply matrix by matrix.
 */
export function makeBatchMatMul(stock: KernelFunc): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { transposeA, transposeB } = attrs as unknown as BatchMatMulAttrs;
    const { a, b } = inputs;
    if (a == null || b == null) throw new Error('BatchMatMul: missing input');
    const plain = { transposeA: false, transposeB: false };
    const runStock = (x: TensorInfo, y: TensorInfo, at = plain): Tensor =>
      engine().makeTensorFromTensorInfo(
        stock({ inputs: { a: x, b: y }, backend, attrs: at as unknown as tf.NamedAttrMap }) as TensorInfo,
      );
    const batchA = util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = util.sizeFromShape(b.shape.slice(0, -2));
    if (batchA === 1 && batchB === 1 && !transposeA && a.dtype === 'float32' && b.dtype === 'float32') {
      const [m, k] = a.shape.slice(-2);
      const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
      const seen = seenB.has(b.dataId);
      seenB.add(b.dataId);
      // transposeB has no fast stock path at all (it would transpose B, a new tensor, every call).
      if (k * n >= OWN_GEMM_MIN_B && m <= OWN_GEMM_MAX_M && (transposeB || !seen)) {
        const wasm = asWasmBackend(backend);
        const outShape = [
          ...broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)),
          m,
          n,
        ];
        const out = wasm.makeOutput(outShape, 'float32');
        // Views after the allocation: growing the heap detaches older ones.
        gemm(
          transposeB ? 'nt' : 'nn',
          wasm.typedArrayFromHeap(a) as Float32Array,
          wasm.typedArrayFromHeap(b) as Float32Array,
          wasm.typedArrayFromHeap(out) as Float32Array,
          m,
          k,
          n,
        );
        return out;
      }
    }
    if (!transposeA && !transposeB && batchA === 1 && batchB === 1) {
      // Already the fast path: no tidy, no copies.
      return stock({ inputs, backend, attrs });
    }
    return tf.tidy(() => {
      let x = asTensor(a);
      let y = asTensor(b);
      if (transposeA) x = swapLastTwo(x);
      if (transposeB) y = swapLastTwo(y);
      const [m, k] = x.shape.slice(-2);
      const n = y.shape[y.rank - 1];
      const outOuter = broadcast_util.assertAndGetBroadcastShape(x.shape.slice(0, -2), y.shape.slice(0, -2));
      if (batchA === 1 && batchB === 1) {
        const r = runStock(tf.reshape(x, [m, k]), tf.reshape(y, [k, n]));
        return tf.reshape(r, [...outOuter, m, n]);
      }
      const simple = batchA === batchB || batchA === 1 || batchB === 1;
      if (!simple || m * k * n < LOOP_MIN_WORK) {
        // General broadcasting, or tiny matrices: the stock kernel (now without transposes).
        return runStock(x, y);
      }
      const batch = Math.max(batchA, batchB);
      const x3 = tf.reshape(x, [batchA, m, k]);
      const y3 = tf.reshape(y, [batchB, k, n]);
      const parts: Tensor[] = [];
      for (let i = 0; i < batch; i++) {
        const xi = tf.reshape(tf.slice(x3, [batchA === 1 ? 0 : i, 0, 0], [1, m, k]), [m, k]);
        const yi = tf.reshape(tf.slice(y3, [batchB === 1 ? 0 : i, 0, 0], [1, k, n]), [k, n]);
        parts.push(runStock(xi, yi));
      }
      return tf.reshape(tf.stack(parts), [...outOuter, m, n]);
    });
  };
}

function swapLastTwo(t: Tensor): Tensor {
  const perm = t.shape.map((_, i) => i);
  perm[t.rank - 2] = t.rank - 1;
  perm[t.rank - 1] = t.rank - 2;
  return tf.transpose(t, perm);
}
