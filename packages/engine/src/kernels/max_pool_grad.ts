import { backend_util, type KernelFunc, type MaxPoolGradAttrs } from '@tensorflow/tfjs-core';
import { convPool } from './conv_pool.js';
import { asWasmBackend } from './util.js';

/**
 * MaxPool gradient: route each dy to the first maximum of its window (row-major scan, strict '>'),
 * the same tie rule as the cpu backend; ties are common after ReLU (all-zero windows). One SIMD pass
 * over the windows with per-channel running maxima (wasm/training.c, one image per conv-pool thread),
 * instead of the stock kernel's per-input-pixel search.
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
    // The kernel lists a window's pixels in a fixed 256-entry buffer.
    if (info.filterHeight * info.filterWidth > 256) return stock(args);
    const wasm = asWasmBackend(backend);
    const out = wasm.makeOutput(input.shape, 'float32');
    convPool().maxPoolGrad(
      {
        n: info.batchSize,
        h: info.inHeight,
        w: info.inWidth,
        c: info.inChannels,
        oh: info.outHeight,
        ow: info.outWidth,
        kh: info.filterHeight,
        kw: info.filterWidth,
        sh: info.strideHeight,
        sw: info.strideWidth,
        dh: info.dilationHeight,
        dw: info.dilationWidth,
        top: info.padInfo.top,
        left: info.padInfo.left,
        x: wasm.typedArrayFromHeap(input) as Float32Array,
        dy: wasm.typedArrayFromHeap(dy) as Float32Array,
      },
      wasm.typedArrayFromHeap(out) as Float32Array,
    );
    return out;
  };
}
