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
import { convPool, type GemmKind } from './conv_pool.js';
import { asTensor, asWasmBackend } from './util.js';

/** Matrices smaller than this (m*k*n) stay on the stock kernel: a per-matrix loop would cost more. */
const LOOP_MIN_WORK = 32 * 32 * 32;
/**
 * Own packing-free kernels (the conv pool's gemm, wasm/dense.c) for a right-hand matrix (or, for xᵀ·dy,
 * an output) of at least this many elements...
 * XNNPACK repacks a right-hand matrix it has not seen at ~25 ns/element (0.35 s for a 25088x512 Dense
 * kernel), which dominates whenever few rows multiply it (m small: Dense layers at training batch sizes).
 */
const OWN_GEMM_MIN_B = 1 << 16;
/**
 * ...and at most this many rows (xᵀ·dy: this deep): beyond it XNNPACK's arithmetic wins back the packing.
 * Below it ours is as fast as XNNPACK even on a B it has packed before (a 32x25088x512 product: ~93 vs
 * ~96 ms), so every such product takes it: a Dense kernel is a new tensor after every training step, and
 * the first validation batch after it would pay the packing (~0.3 s) too.
 */
const OWN_GEMM_MAX_M = 128;
/** Products that took the conv pool's gemm, by kind (tests check which path ran). */
export const denseGemmStats: Record<GemmKind, number> = { nn: 0, tn: 0, nt: 0 };

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
    const own = ownGemm(a, b, transposeA, transposeB, backend);
    if (own !== null) return own;
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

/**
 * out = a·b (or aᵀ·b, a·bᵀ) on the conv pool's gemm when the shapes are a Dense layer's (one matrix each,
 * float32, few rows against a large weight, or xᵀ·dy); null for the stock kernel.
 */
function ownGemm(
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  backend: unknown,
): TensorInfo | null {
  if (
    util.sizeFromShape(a.shape.slice(0, -2)) !== 1 ||
    util.sizeFromShape(b.shape.slice(0, -2)) !== 1 ||
    a.dtype !== 'float32' ||
    b.dtype !== 'float32' ||
    (transposeA && transposeB)
  )
    return null;
  // The product as out[rows, n] over a contraction of `depth`.
  const [a0, a1] = a.shape.slice(-2);
  const rows = transposeA ? a1 : a0;
  const depth = transposeA ? a0 : a1;
  const n = transposeB ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
  const kind: GemmKind | null = transposeA
    ? // xᵀ·dy (a Dense kernel's gradient): a short contraction (the batch) into a large output.
      depth <= OWN_GEMM_MAX_M && rows * n >= OWN_GEMM_MIN_B
      ? 'tn'
      : null
    : depth * n >= OWN_GEMM_MIN_B && rows <= OWN_GEMM_MAX_M
      ? transposeB
        ? 'nt'
        : 'nn'
      : null;
  if (kind === null) return null;
  const wasm = asWasmBackend(backend);
  const outShape = [
    ...broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)),
    rows,
    n,
  ];
  const out = wasm.makeOutput(outShape, 'float32');
  // Views after the allocation: growing the heap detaches older ones. gemm's (m, k, n) are a's two
  // dimensions and n: (rows, depth) for nn / nt, (depth, rows) for tn.
  convPool().gemm(
    kind,
    wasm.typedArrayFromHeap(a) as Float32Array,
    wasm.typedArrayFromHeap(b) as Float32Array,
    wasm.typedArrayFromHeap(out) as Float32Array,
    a0,
    a1,
    n,
  );
  denseGemmStats[kind]++;
  return out;
}

/** Activations _FusedMatMul may carry that are applied here after our product (others: stock). */
const ACTIVATIONS: Record<string, ((t: Tensor, alpha: number) => Tensor) | undefined> = {
  linear: (t) => t,
  relu: (t) => tf.relu(t),
  relu6: (t) => tf.relu6(t),
  sigmoid: (t) => tf.sigmoid(t),
  elu: (t) => tf.elu(t),
  leakyrelu: (t, alpha) => tf.leakyRelu(t, alpha),
};

/**
 * _FusedMatMul (a Dense layer at inference, or training with a linear activation): a Dense layer's
 * shapes take the conv pool's gemm, then the bias and activation as ops on the small [m, n] result;
 * a weight XNNPACK has not packed yet (every validation pass after a training epoch) costs ~0.3 s stock.
 */
export function makeFusedMatMul(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { a, b, bias, preluActivationWeights } = inputs;
    const { transposeA, transposeB, activation, leakyreluAlpha } = attrs as unknown as {
      transposeA: boolean;
      transposeB: boolean;
      activation?: string;
      leakyreluAlpha?: number;
    };
    const act = ACTIVATIONS[activation ?? 'linear'];
    if (a == null || b == null || act === undefined || preluActivationWeights != null) return stock(args);
    if (bias != null && (bias.dtype !== 'float32' || bias.shape.length > 1)) return stock(args);
    const own = ownGemm(a, b, transposeA, transposeB, backend);
    if (own === null) return stock(args);
    return tf.tidy(() => {
      let y = engine().makeTensorFromTensorInfo(own);
      if (bias != null) y = tf.add(y, asTensor(bias));
      return act(y, leakyreluAlpha ?? 0.2);
    });
  };
}
