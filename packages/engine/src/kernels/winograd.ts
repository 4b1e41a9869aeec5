import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { convPool, stride1Geometry } from './conv_pool.js';
import { asWasmBackend, type PadAttr, pair } from './util.js';

/** Calls that took the Winograd path (tests check the path they mean to test is the one taken). */
export const winogradStats = { calls: 0 };

const ACTIVATIONS: Record<string, 0 | 1 | 2> = { linear: 0, relu: 1, relu6: 2 };
/** Below this many multiply-adds the stock kernel is as good (fixed costs: copies, waking threads). */
const MIN_MACS = 1 << 20;

interface ConvAttrs {
  strides: number | [number, number];
  pad: PadAttr;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  activation?: string;
}

/**
 * Conv2D / FusedConv2D for 3x3 stride-1 NHWC convolutions by Winograd F(2x2,3x3) (wasm/winograd.c) on
 * the engine's conv pool (conv_pool.ts): 2.3-2.6x the stock XNNPACK kernel on VGG's layers here with plain SIMD, more with FMA
 * (bench/engine/compare.bench.ts). Everything else (other kernel sizes, strides, dilations, channel
 * counts not a multiple of 4, PReLU/LeakyReLU/ELU/sigmoid, tiny outputs) goes to the stock kernel.
 */
export function makeWinogradConv(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend } = args;
    const attrs = args.attrs as unknown as ConvAttrs;
    const x = inputs.x as TensorInfo;
    const filter = inputs.filter as TensorInfo;
    const bias = inputs.bias as TensorInfo | undefined;
    const act = ACTIVATIONS[attrs.activation ?? 'linear'];
    const [kh, kw, c, oc] = filter.shape;
    const [sh, sw] = pair(attrs.strides);
    const [dh, dw] = pair(attrs.dilations);
    if (
      act === undefined ||
      attrs.dataFormat === 'NCHW' ||
      x.dtype !== 'float32' ||
      filter.dtype !== 'float32' ||
      kh !== 3 ||
      kw !== 3 ||
      sh !== 1 ||
      sw !== 1 ||
      dh !== 1 ||
      dw !== 1 ||
      c % 4 !== 0 ||
      oc % 4 !== 0 ||
      (bias !== undefined && bias.shape.reduce((a, b) => a * b, 1) !== oc)
    ) {
      return stock(args);
    }
    const { geometry, macs } = stride1Geometry(x.shape, filter.shape, attrs.pad, attrs.dimRoundingMode);
    if (macs < MIN_MACS) return stock(args);
    const wasm = asWasmBackend(backend);
    const out = wasm.makeOutput([geometry.n, geometry.oh, geometry.ow, oc], 'float32');
    winogradStats.calls++;
    convPool().winograd(
      {
        ...geometry,
        x: wasm.typedArrayFromHeap(x) as Float32Array,
        filter: wasm.typedArrayFromHeap(filter) as Float32Array,
        bias: bias ? (wasm.typedArrayFromHeap(bias) as Float32Array) : null,
        activation: act,
      },
      wasm.typedArrayFromHeap(out) as Float32Array,
    );
    return out;
  };
}
