import * as tf from '@tensorflow/tfjs-core';
import {
  backend_util,
  DepthwiseConv2dNativeBackpropFilter,
  type DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropInput,
  type DepthwiseConv2dNativeBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type Tensor4D,
} from '@tensorflow/tfjs-core';
import { dyAsForwardInput } from './conv2d_backprop_input.js';
import { asTensor, asWasmBackend, pair } from './util.js';
import { depthwiseFilterGrad } from './wasm_kernels.js';

/**
 * dx of a depthwise conv: a depthwise correlation of (dilated, padded) dy with the flipped filter.
 * With channel multiplier m, dy has C*m channels; every one of them is correlated with its own filter
 * slice and the m results of each input channel are summed.
 */
export const depthwiseConv2dNativeBackpropInput: KernelFunc = ({ inputs, attrs }) => {
  const a = attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
  return tf.tidy(() => {
    const dy = asTensor<Tensor4D>(inputs.dy);
    const filter = asTensor<Tensor4D>(inputs.filter);
    const [kh, kw, c, m] = filter.shape;
    const convInfo = backend_util.computeConv2DInfo(
      a.inputShape,
      filter.shape,
      pair(a.strides),
      pair(a.dilations),
      a.pad,
      a.dimRoundingMode,
      true,
    );
    const flipped = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, c * m, 1]) as Tensor4D;
    const d = dyAsForwardInput(dy, convInfo);
    const dx = tf.depthwiseConv2d(d, flipped, 1, 'valid', 'NHWC', [
      convInfo.dilationHeight,
      convInfo.dilationWidth,
    ]);
    if (m === 1) return dx;
    const [n, h, w] = dx.shape;
    return tf.sum(tf.reshape(dx, [n, h, w, c, m]), 4);
  });
};

/**
 * dW[kh,kw,c,j] = sum over n,oh,ow of x[n, oh*s + kh*d - pad, ow*s + kw*d - pad, c] * dy[n,oh,ow,c*m + j].
 * A direct loop over the wasm heap: the reduction is only KH*KW*C*m outputs wide, which no XNNPACK op
 * maps onto well, and tap-by-tap tf ops cost a strided copy of x per tap. Accumulates in float64.
 */
export const depthwiseConv2dNativeBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const a = attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
  const { x, dy } = inputs;
  if (x == null || dy == null) throw new Error('DepthwiseConv2dNativeBackpropFilter: missing input');
  if (x.dtype !== 'float32' || dy.dtype !== 'float32') {
    throw new Error('DepthwiseConv2dNativeBackpropFilter: float32 only');
  }
  const ci = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    pair(a.strides),
    pair(a.dilations),
    a.pad,
    a.dimRoundingMode,
    true,
  );
  const [n, h, w, c] = x.shape;
  const { outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = ci;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = ci;
  const top = ci.padInfo.top;
  const left = ci.padInfo.left;
  const cm = ci.outChannels;
  const m = cm / c;
  const wasm = asWasmBackend(backend);
  const out = wasm.makeOutput([kh, kw, c, m], 'float32');
  // Views are taken after the allocation above: growing the heap detaches older views.
  const xs = wasm.typedArrayFromHeap(x) as Float32Array;
  const ds = wasm.typedArrayFromHeap(dy) as Float32Array;
  if (m === 1) {
    // The common case (MobileNet): vectorised over channels in wasm/kernels.c.
    const geometry = { n, h, w, c, oh, ow, kh, kw, sh, sw, dh, dw, top, left };
    depthwiseFilterGrad(xs, ds, wasm.typedArrayFromHeap(out) as Float32Array, geometry);
    return out;
  }
  const acc = new Float64Array(kh * kw * cm);
  for (let b = 0; b < n; b++) {
    for (let r = 0; r < oh; r++) {
      for (let q = 0; q < ow; q++) {
        const dOff = ((b * oh + r) * ow + q) * cm;
        for (let i = 0; i < kh; i++) {
          const ih = r * sh + i * dh - top;
          if (ih < 0 || ih >= h) continue;
          for (let j = 0; j < kw; j++) {
            const iw = q * sw + j * dw - left;
            if (iw < 0 || iw >= w) continue;
            const xOff = ((b * h + ih) * w + iw) * c;
            const aOff = (i * kw + j) * cm;
            if (m === 1) {
              for (let k = 0; k < c; k++) acc[aOff + k] += xs[xOff + k] * ds[dOff + k];
            } else {
              for (let k = 0; k < c; k++) {
                const xv = xs[xOff + k];
                for (let u = 0; u < m; u++) acc[aOff + k * m + u] += xv * ds[dOff + k * m + u];
              }
            }
          }
        }
      }
    }
  }
  (wasm.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
};

export const depthwiseConv2dNativeBackpropInputConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropInput,
};

export const depthwiseConv2dNativeBackpropFilterConfig: KernelConfig = {
  kernelName: DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropFilter,
};
