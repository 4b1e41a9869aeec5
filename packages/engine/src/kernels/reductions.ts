import { backend_util, type KernelFunc, type MeanAttrs, type SumAttrs, util } from '@tensorflow/tfjs-core';
import { convPool } from './conv_pool.js';
import { asWasmBackend } from './util.js';

/** From this many elements the conv pool's SIMD threads (wasm/training.c) do it; below, one JS pass. */
const POOL_MIN = 1 << 16;

/**
 * Sum / Mean over leading axes (BatchNorm statistics and gradients reduce [N,H,W,C] over N,H,W).
 * Stock wasm transposes the reduced axes innermost first (a full strided copy); here one linear pass
 * adds rows into a float64 accumulator per output element (on the conv pool's threads for large inputs).
 * Everything else goes to the stock kernel.
 */
function makeLeadingReduce(stock: KernelFunc, mean: boolean): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const x = inputs.x;
    if (x == null) throw new Error('reduce: missing input');
    const { axis, keepDims } = attrs as unknown as SumAttrs | MeanAttrs;
    const axes = util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    const leading = axes.length > 0 && axes.every((a, i) => a === i);
    // Innermost-only reductions need no transpose in the stock kernel; leave them to it.
    if (x.dtype !== 'float32' || !leading || axes.length === x.shape.length) return stock(args);
    const rows = util.sizeFromShape(x.shape.slice(0, axes.length));
    const cols = util.sizeFromShape(x.shape.slice(axes.length));
    const wasm = asWasmBackend(backend);
    const outShape = keepDims
      ? backend_util.expandShapeToKeepDim(x.shape.slice(axes.length), axes)
      : x.shape.slice(axes.length);
    const out = wasm.makeOutput(outShape, 'float32');
    const xs = wasm.typedArrayFromHeap(x) as Float32Array;
    const os = wasm.typedArrayFromHeap(out) as Float32Array;
    if (xs.length >= POOL_MIN) {
      convPool().reduceRows(xs, rows, cols, os, mean);
      return out;
    }
    const acc = new Float64Array(cols);
    for (let r = 0, off = 0; r < rows; r++, off += cols) {
      for (let c = 0; c < cols; c++) acc[c] += xs[off + c];
    }
    if (mean) {
      for (let c = 0; c < cols; c++) os[c] = acc[c] / rows;
    } else {
      os.set(acc);
    }
    return out;
  };
}

export const makeSum = (stock: KernelFunc): KernelFunc => makeLeadingReduce(stock, false);
export const makeMean = (stock: KernelFunc): KernelFunc => makeLeadingReduce(stock, true);
