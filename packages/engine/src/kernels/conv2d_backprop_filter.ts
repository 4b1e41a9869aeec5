import * as tf from '@tensorflow/tfjs-core';
import {
  backend_util,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  type KernelConfig,
  type KernelFunc,
  type Tensor4D,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { convPool, stride1Geometry } from './conv_pool.js';
import { asTensor, asWasmBackend, NCHW_TO_NHWC, pair } from './util.js';

/** Calls that took the conv pool's filter_grad path (tests check which path ran). */
export const filterGradStats = { calls: 0 };
/** Below this many multiply-adds the conv formulation below is as good (fixed costs of the pool). */
const MIN_MACS = 1 << 20;

/**
 * dW[kh,kw,ci,co] = sum over n,oh,ow of xpad[n, oh*s + kh, ow*s + kw, ci] * dy[n, oh, ow, co].
 * That is itself a forward convolution once batch and channels swap roles: input x as [CI, H, W, N]
 * (input channels = batch items), "filter" dy as [OH, OW, N, CO], dilation = the forward stride, and the
 * output [CI, KH, KW, CO] is dW up to a transpose. XNNPACK then does the whole reduction in one call,
 * with no im2col buffer (about 4x faster here than im2col + matmul, 30x+ faster than the cpu kernel).
 */
export const conv2DBackpropFilter: KernelFunc = ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as Conv2DBackpropFilterAttrs;
  const fast = stride1FilterGrad(inputs.x, inputs.dy, a, backend);
  if (fast !== null) return fast;
  return tf.tidy(() => {
    let x = asTensor<Tensor4D>(inputs.x);
    let dy = asTensor<Tensor4D>(inputs.dy);
    if (a.dataFormat === 'NCHW') {
      x = tf.transpose(x, NCHW_TO_NHWC);
      dy = tf.transpose(dy, NCHW_TO_NHWC);
    }
    const convInfo = backend_util.computeConv2DInfo(
      x.shape,
      a.filterShape,
      pair(a.strides),
      1,
      a.pad,
      a.dimRoundingMode,
      false,
      'channelsLast',
    );
    return filterGradAsConv(x, dy, convInfo);
  });
};

/**
 * Stride-1 NHWC with output channels a multiple of 4 (every conv of smallcnn, NIN and VGG):
 * the conv pool's filter_grad (wasm/filter_grad.c), which reads x and dy in place on every thread.
 */
function stride1FilterGrad(
  xInfo: TensorInfo | undefined,
  dyInfo: TensorInfo | undefined,
  a: Conv2DBackpropFilterAttrs,
  backend: unknown,
): TensorInfo | null {
  if (xInfo == null || dyInfo == null || a.dataFormat === 'NCHW') return null;
  if (xInfo.dtype !== 'float32' || dyInfo.dtype !== 'float32') return null;
  const [kh, kw, c, oc] = a.filterShape;
  const [sh, sw] = pair(a.strides);
  if (sh !== 1 || sw !== 1 || oc % 4 !== 0) return null;
  const { geometry, macs } = stride1Geometry(xInfo.shape, a.filterShape, a.pad, a.dimRoundingMode);
  if (macs < MIN_MACS) return null;
  const wasm = asWasmBackend(backend);
  const out = wasm.makeOutput([kh, kw, c, oc], 'float32');
  filterGradStats.calls++;
  convPool().filterGrad(
    {
      ...geometry,
      x: wasm.typedArrayFromHeap(xInfo) as Float32Array,
      dy: wasm.typedArrayFromHeap(dyInfo) as Float32Array,
      kh,
      kw,
    },
    wasm.typedArrayFromHeap(out) as Float32Array,
  );
  return out;
}

/** The conv-of-swapped-axes computation above; also used by tests on its own. */
export function filterGradAsConv(x: Tensor4D, dy: Tensor4D, convInfo: backend_util.Conv2DInfo): Tensor4D {
  const { strideHeight: sh, strideWidth: sw, padInfo, filterHeight: kh, filterWidth: kw } = convInfo;
  const [, h, w] = x.shape;
  const [, oh, ow] = dy.shape;
  // Rows of the padded input actually read: (KH-1) + (OH-1)*s + 1 from the top padding on.
  const bottom = kh - 1 + (oh - 1) * sh + 1 - h - padInfo.top;
  const right = kw - 1 + (ow - 1) * sw + 1 - w - padInfo.left;
  let xs = x;
  if (bottom < 0 || right < 0) {
    // Trailing rows/cols no tap reaches (VALID with stride > 1): crop instead of negative padding.
    xs = tf.slice(x, [0, 0, 0, 0], [-1, h + Math.min(bottom, 0), w + Math.min(right, 0), -1]);
  }
  const xT = tf.transpose(xs, [3, 1, 2, 0]) as Tensor4D;
  const dyT = tf.transpose(dy, [1, 2, 0, 3]) as Tensor4D;
  const pads: [[number, number], [number, number], [number, number], [number, number]] = [
    [0, 0],
    [padInfo.top, Math.max(bottom, 0)],
    [padInfo.left, Math.max(right, 0)],
    [0, 0],
  ];
  const out = tf.conv2d(xT, dyT, 1, pads, 'NHWC', [sh, sw]);
  return tf.transpose(out, [1, 2, 0, 3]);
}

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter,
};
