import {
  getKernel,
  type KernelConfig,
  type KernelFunc,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { makeBatchMatMul, makeFusedMatMul } from './batch_matmul.js';
import { conv2DBackpropFilterConfig } from './conv2d_backprop_filter.js';
import { conv2DBackpropInput } from './conv2d_backprop_input.js';
import {
  depthwiseConv2dNativeBackpropFilterConfig,
  depthwiseConv2dNativeBackpropInputConfig,
} from './depthwise_backprop.js';
import { makeIdentity } from './identity.js';
import { makeMaxPoolGrad } from './max_pool_grad.js';
import { makeMean, makeSum } from './reductions.js';
import { makeTile } from './tile.js';
import { unsortedSegmentSumConfig } from './unsorted_segment_sum.js';
import { makeWinogradConv } from './winograd.js';

/** Kernels stock tfjs-backend-wasm 4.22 lacks; a conv-net training step needs them. */
export const ADDED_KERNELS = [
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'UnsortedSegmentSum',
] as const;

/**
 * Stock wasm kernels we replace with faster ones (see bench/engine/train.bench.ts): each factory gets
 * the stock kernelFunc, to fall back on for cases it does not speed up.
 */
const REPLACEMENTS: Record<string, (stock: KernelFunc) => KernelFunc> = {
  Conv2DBackpropInput: () => conv2DBackpropInput,
  BatchMatMul: makeBatchMatMul,
  _FusedMatMul: makeFusedMatMul,
  Tile: makeTile,
  Sum: makeSum,
  Mean: makeMean,
  MaxPoolGrad: makeMaxPoolGrad,
  Identity: makeIdentity,
  Conv2D: makeWinogradConv,
  FusedConv2D: makeWinogradConv,
};
export const REPLACED_KERNELS = Object.keys(REPLACEMENTS);

let added = false;
const stock = new Map<string, KernelConfig>();
let replaced = false;

/**
 * Registers the headbench training kernels on the 'wasm' backend: the missing ones, and (unless
 * `replaceSlowKernels` is false) faster versions of slow stock ones. Idempotent. Call it after the wasm
 * backend is initialised (initBackend does) so the stock kernels have run their setup.
 */
export function registerTrainingKernels(options: { replaceSlowKernels?: boolean } = {}): void {
  if (!added) {
    for (const name of ADDED_KERNELS) {
      // Someone else (a newer tfjs) may provide it already: keep theirs.
      if (getKernel(name, 'wasm') != null) continue;
      registerKernel(
        {
          Conv2DBackpropFilter: conv2DBackpropFilterConfig,
          DepthwiseConv2dNativeBackpropFilter: depthwiseConv2dNativeBackpropFilterConfig,
          DepthwiseConv2dNativeBackpropInput: depthwiseConv2dNativeBackpropInputConfig,
          UnsortedSegmentSum: unsortedSegmentSumConfig,
        }[name],
      );
    }
    added = true;
  }
  useKernelReplacements(options.replaceSlowKernels ?? true);
}

/**
 * Switches between our replacements (REPLACED_KERNELS) and the stock wasm kernels, for benchmarks and
 * A/B checks. Requires the stock kernels to be registered (importing the wasm
 * backend does that).
 */
export function useKernelReplacements(on: boolean): void {
  if (on === replaced) return;
  for (const name of REPLACED_KERNELS) {
    if (on) {
      const config = getKernel(name, 'wasm');
      if (config == null) throw new Error(`wasm backend has no stock ${name} kernel to replace`);
      stock.set(name, config);
      unregisterKernel(name, 'wasm');
      registerKernel({
        kernelName: name,
        backendName: 'wasm',
        kernelFunc: REPLACEMENTS[name](config.kernelFunc),
      });
    } else {
      unregisterKernel(name, 'wasm');
      registerKernel(stock.get(name)!);
    }
  }
  replaced = on;
}
