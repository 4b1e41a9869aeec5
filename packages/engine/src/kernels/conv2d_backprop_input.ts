import * as tf from '@tensorflow/tfjs-core';
import {
  backend_util,
  type Conv2DBackpropInputAttrs,
  type KernelFunc,
  type Tensor4D,
} from '@tensorflow/tfjs-core';
import { asTensor, NCHW_TO_NHWC, NHWC_TO_NCHW, pair, shapeToNHWC } from './util.js';

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
 * dx as a forward conv of (dilated, padded) dy with the filter flipped in space and its in/out channels
 * swapped, so XNNPACK's fast forward convolution does the work (stock wasm kernel is a naive loop).
 */
export const conv2DBackpropInput: KernelFunc = ({ inputs, attrs }) => {
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
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as Tensor4D;
    const d = dyAsForwardInput(dy, convInfo);
    const dx = tf.conv2d(d, flipped, 1, 'valid', 'NHWC', [convInfo.dilationHeight, convInfo.dilationWidth]);
    return a.dataFormat === 'NCHW' ? tf.transpose(dx, NHWC_TO_NCHW) : dx;
  });
};
