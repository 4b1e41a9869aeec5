import * as tf from '@tensorflow/tfjs-core';
import {
  backend_util,
  type Conv2DBackpropInputAttrs,
  type KernelFunc,
  type Tensor4D,
} from '@tensorflow/tfjs-core';
import { asTensor, asWasmBackend, NCHW_TO_NHWC, NHWC_TO_NCHW, pair, shapeToNHWC } from './util.js';

/**
 * Turns dy into the input of the equivalent stride-1 forward correlation that produces dx:
 * zeros are inserted between dy's pixels for strides > 1 ("dilation" of dy), then it is padded (or
 * cropped) so that a stride-1 correlation with the spatially flipped filter yields exactly inH x inW.
 * With forward taps at x[o*s + k*d - pad], dx[i] = sum_k dyd[i + pad - k*d] * w[k], which is a
 * correlation of dyd padded by (K-1)*d - pad on top with the flipped filter.
 */
export function dyAsForwardInput(dy: Tensor4D, convInfo: backend_util.Conv2DInfo): Tensor4D {
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw, padInfo } = convInfo;
  const [n, oh, ow, c] = dy.shape;
  let d = dy;
  if (sh > 1 || sw > 1) {
    // [N,OH,1,OW,1,C] padded to [N,OH,sh,OW,sw,C]: each dy pixel followed by s-1 zeros.
    d = tf.reshape(
      tf.pad(tf.reshape(dy, [n, oh, 1, ow, 1, c]), [
        [0, 0],
        [0, 0],
        [0, sh - 1],
        [0, 0],
        [0, sw - 1],
        [0, 0],
      ]),
      [n, oh * sh, ow * sw, c],
    );
  }
  const keh = (convInfo.filterHeight - 1) * dh + 1;
  const kew = (convInfo.filterWidth - 1) * dw + 1;
  const top = keh - 1 - padInfo.top;
  const left = kew - 1 - padInfo.left;
  const bottom = convInfo.inHeight + keh - 1 - oh * sh - top;
  const right = convInfo.inWidth + kew - 1 - ow * sw - left;
  if (top > 0 || left > 0 || bottom > 0 || right > 0) {
    d = tf.pad(d, [
      [0, 0],
      [Math.max(top, 0), Math.max(bottom, 0)],
      [Math.max(left, 0), Math.max(right, 0)],
      [0, 0],
    ]);
  }
  if (top < 0 || left < 0 || bottom < 0 || right < 0) {
    d = tf.slice(
      d,
      [0, Math.max(-top, 0), Math.max(-left, 0), 0],
      [n, convInfo.inHeight + keh - 1, convInfo.inWidth + kew - 1, c],
    );
  }
  return d;
}

/**
 * For stride 1 (no zeros to insert), the padding dyAsForwardInput would add, as explicit conv padding;
 * null when it would crop instead.
 */
function stride1Padding(
  info: backend_util.Conv2DInfo,
): [[number, number], [number, number], [number, number], [number, number]] | null {
  if (info.strideHeight !== 1 || info.strideWidth !== 1) return null;
  const keh = (info.filterHeight - 1) * info.dilationHeight + 1;
  const kew = (info.filterWidth - 1) * info.dilationWidth + 1;
  const top = keh - 1 - info.padInfo.top;
  const left = kew - 1 - info.padInfo.left;
  const bottom = info.inHeight + keh - 1 - info.outHeight - top;
  const right = info.inWidth + kew - 1 - info.outWidth - left;
  if (Math.min(top, left, bottom, right) < 0) return null;
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

/**
 * The filter flipped in space with in/out channels swapped, w'[h,w,o,i] = w[KH-1-h, KW-1-w, i, o], in one
 * JS pass over the wasm heap (stock Reverse + Transpose took ~2 ms each on a 3x3x128x128 filter).
 */
function flipFilter(filter: Tensor4D, backend: unknown): Tensor4D {
  const [kh, kw, ci, co] = filter.shape;
  if (filter.dtype !== 'float32') return tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as Tensor4D;
  const wasm = asWasmBackend(backend);
  const out = wasm.makeOutput([kh, kw, co, ci], 'float32');
  const src = wasm.typedArrayFromHeap(filter) as Float32Array;
  const dst = wasm.typedArrayFromHeap(out) as Float32Array;
  for (let h = 0; h < kh; h++) {
    for (let w = 0; w < kw; w++) {
      const from = ((kh - 1 - h) * kw + (kw - 1 - w)) * ci * co;
      const to = (h * kw + w) * co * ci;
      for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) dst[to + o * ci + i] = src[from + i * co + o];
    }
  }
  return tf.engine().makeTensorFromTensorInfo(out) as Tensor4D;
}

/**
 * dx as a forward conv of (dilated, padded) dy with the filter flipped in space and its in/out channels
 * swapped, so XNNPACK's fast forward convolution does the work (stock wasm kernel is a naive loop).
 */
export const conv2DBackpropInput: KernelFunc = ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as Conv2DBackpropInputAttrs & { dilations?: number | [number, number] };
  return tf.tidy(() => {
    let dy = asTensor<Tensor4D>(inputs.dy);
    const filter = asTensor<Tensor4D>(inputs.filter);
    if (a.dataFormat === 'NCHW') dy = tf.transpose(dy, NCHW_TO_NHWC);
    const convInfo = backend_util.computeConv2DInfo(
      shapeToNHWC(a.inputShape, a.dataFormat),
      filter.shape,
      pair(a.strides),
      pair(a.dilations),
      a.pad,
      a.dimRoundingMode,
      false,
      'channelsLast',
    );
    const flipped = flipFilter(filter, backend);
    const dilations: [number, number] = [convInfo.dilationHeight, convInfo.dilationWidth];
    const pads = stride1Padding(convInfo);
    // Stride 1: the conv pads dy itself (no padded copy; Winograd takes explicit padding).
    const dx =
      pads !== null
        ? tf.conv2d(dy, flipped, 1, pads, 'NHWC', dilations)
        : tf.conv2d(dyAsForwardInput(dy, convInfo), flipped, 1, 'valid', 'NHWC', dilations);
    return a.dataFormat === 'NCHW' ? tf.transpose(dx, NHWC_TO_NCHW) : dx;
  });
};
