import { type KernelFunc, type TileAttrs, util } from '@tensorflow/tfjs-core';
import { asWasmBackend } from './util.js';

/**
 * Tile by block copies: each input row is copied once, then every finished block is replicated by
 * doubling copyWithin (memcpy speed). Stock wasm Tile computes every output element's source index
 * and was the slowest kernel of a BatchNorm training step (its gradient tiles 1/sqrt(var) to full size).
 */
export function makeTile(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const x = inputs.x;
    if (x == null) throw new Error('Tile: missing input');
    if (x.dtype === 'string' || x.shape.length === 0) return stock(args);
    const { reps } = attrs as unknown as TileAttrs;
    const shape = x.shape;
    const rank = shape.length;
    const outShape = shape.map((s, i) => s * reps[i]);
    const wasm = asWasmBackend(backend);
    const out = wasm.makeOutput(outShape, x.dtype as 'float32' | 'int32' | 'bool');
    if (util.sizeFromShape(outShape) === 0) return out;
    const src = wasm.typedArrayFromHeap(x);
    const dst = wasm.typedArrayFromHeap(out);
    const srcStrides = util.computeStrides(shape);
    const dstStrides = util.computeStrides(outShape);
    const fill = (dim: number, srcOff: number, dstOff: number): void => {
      if (dim === rank - 1) {
        dst.set(src.subarray(srcOff, srcOff + shape[dim]), dstOff);
      } else {
        for (let i = 0; i < shape[dim]; i++) {
          fill(dim + 1, srcOff + i * srcStrides[dim], dstOff + i * dstStrides[dim]);
        }
      }
      // The block just written holds one copy along this dim; replicate it reps[dim] times.
      const block = shape[dim] * (dim === rank - 1 ? 1 : dstStrides[dim]);
      const total = block * reps[dim];
      for (let have = block; have < total; have *= 2) {
        dst.copyWithin(dstOff + have, dstOff, dstOff + Math.min(have, total - have));
      }
    };
    fill(0, 0, 0);
    return out;
  };
}
