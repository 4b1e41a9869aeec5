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
import { asTensor } from './util.js';

/** Matrices smaller than this (m*k*n) stay on the stock kernel: a per-matrix loop would cost more. */
const LOOP_MIN_WORK = 32 * 32 * 32;

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
