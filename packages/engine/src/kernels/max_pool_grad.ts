import { backend_util, type KernelFunc, type MaxPoolGradAttrs } from '@tensorflow/tfjs-core';
import { convPool } from './conv_pool.js';
import { asWasmBackend } from './util.js';

/** From this many input elements the conv pool's SIMD threads (wasm/training.c) do it; below, JS. */
const POOL_MIN = 1 << 16;

/**
 * MaxPool gradient: route each dy to the first maximum of its window (row-major scan, strict '>'),
 * the same tie rule as the cpu backend; ties are common after ReLU (all-zero windows). One JS pass
 * over the windows with per-channel running maxima, instead of the stock kernel's per-input-pixel search;
 * large inputs go to the same scan in SIMD on the conv pool's threads, one image per thread at a time.
 */
export function makeMaxPoolGrad(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { dy, input } = inputs;
    if (dy == null || input == null) throw new Error('MaxPoolGrad: missing input');
    if (input.dtype !== 'float32' || input.shape.length !== 4) return stock(args);
    const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as MaxPoolGradAttrs;
    const info = backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
    const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw } = info;
    const { dilationHeight: dh, dilationWidth: dw } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const wasm = asWasmBackend(backend);
    const out = wasm.makeOutput(input.shape, 'float32');
    const xs = wasm.typedArrayFromHeap(input) as Float32Array;
    const ds = wasm.typedArrayFromHeap(dy) as Float32Array;
    const dx = wasm.typedArrayFromHeap(out) as Float32Array;
    if (xs.length >= POOL_MIN) {
      const geometry = { n, h, w, c, oh, ow, fh, fw, sh, sw, dh, dw, top, left };
      convPool().maxPoolGrad({ ...geometry, x: xs, dy: ds }, dx);
      return out;
    }
    dx.fill(0);
    const best = new Float32Array(c);
    const where = new Int32Array(c);
    for (let b = 0; b < n; b++) {
      for (let r = 0; r < oh; r++) {
        for (let q = 0; q < ow; q++) {
          best.fill(Number.NEGATIVE_INFINITY);
          where.fill(-1);
          for (let i = 0; i < fh; i++) {
            const ih = r * sh - top + i * dh;
            if (ih < 0 || ih >= h) continue;
            for (let j = 0; j < fw; j++) {
              const iw = q * sw - left + j * dw;
              if (iw < 0 || iw >= w) continue;
              const off = ((b * h + ih) * w + iw) * c;
              for (let k = 0; k < c; k++) {
                const v = xs[off + k];
                if (v > best[k]) {
                  best[k] = v;
                  where[k] = off + k;
                }
              }
            }
          }
          const dOff = ((b * oh + r) * ow + q) * c;
          for (let k = 0; k < c; k++) {
            if (where[k] >= 0) dx[where[k]] += ds[dOff + k];
          }
        }
      }
    }
    return out;
  };
}
