import type * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';
import type { HeadName } from '../config.js';

/** What a head's class activation map is computed from. */
export interface CamWeights {
  /** Classifier kernel as [inputs, classes] (a 1×1 conv's [1, 1, c, C] read as [c, C]). */
  kernel: Float32Array;
  kernelShape: [number, number];
  /** GeM's exponent: its map is drawn on f^p, the quantity GeM averages. */
  power?: number;
}

/** Read the classifier weights (and GeM's p) of a head built by `buildHead`. */
export async function camWeights(head: tfl.LayersModel, name: HeadName): Promise<CamWeights> {
  const [kernelT] = head.getLayer('predictions').getWeights();
  const kernel = (await kernelT.data()) as Float32Array;
  const classes = kernelT.shape[kernelT.shape.length - 1];
  const out: CamWeights = { kernel, kernelShape: [kernel.length / classes, classes] };
  if (name === 'gem') out.power = ((await head.getLayer('pool').getWeights()[0].data()) as Float32Array)[0];
  return out; // the tensors read are the live variables: not ours to dispose
}

/**
 * Class activation maps (Zhou et al. 2016): for a head whose pooling feeds the classifier directly,
 * M_c(x, y) = Σ_k w_kc · f_k(x, y) (f^p for GeM). For `catavgmax` the classifier sees each channel twice, so
 * the two weight halves are summed. For gap and nin the class logit is the map's mean plus the bias.
 */
export function classActivationMap(
  features: Float32Array,
  shape: [number, number, number],
  kernel: Float32Array,
  kernelShape: [number, number],
  classIndex: number,
  power?: number,
): Float32Array {
  const [h, w, c] = shape;
  const [rows, classes] = kernelShape;
  const copies = rows / c;
  if (!Number.isInteger(copies)) throw new Error(`CAM: classifier has ${rows} inputs for ${c} channels`);
  const weights = new Float32Array(c);
  for (let k = 0; k < c; k++) {
    for (let m = 0; m < copies; m++) weights[k] += kernel[(m * c + k) * classes + classIndex];
  }
  const cam = new Float32Array(h * w);
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let k = 0; k < c; k++) {
      const f = features[p * c + k];
      // GeM clamps at 1e-6 before the power, as its pooling does.
      s += weights[k] * (power === undefined ? f : Math.max(f, 1e-6) ** power);
    }
    cam[p] = s;
  }
  return cam;
}

/** Blend a CAM (min-max normalised, upsampled bilinearly, jet colours) over an RGB image; returns PNG bytes. */
export async function camOverlayPng(
  image: Float32Array,
  size: { height: number; width: number },
  cam: Float32Array,
  camSize: { height: number; width: number },
  alpha = 0.45,
): Promise<Buffer> {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of cam) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const norm = Buffer.alloc(cam.length);
  for (let i = 0; i < cam.length; i++) norm[i] = Math.round(hi > lo ? ((cam[i] - lo) / (hi - lo)) * 255 : 0);
  const up = await sharp(norm, { raw: { width: camSize.width, height: camSize.height, channels: 1 } })
    .resize(size.width, size.height, { kernel: 'linear', fit: 'fill' })
    // sharp widens single-channel raw input to sRGB on output; keep one channel.
    .extractChannel(0)
    .raw()
    .toBuffer();
  const out = Buffer.alloc(size.height * size.width * 3);
  for (let p = 0; p < size.height * size.width; p++) {
    const [r, g, b] = jet(up[p] / 255);
    out[p * 3] = clamp(image[p * 3] * (1 - alpha) + r * alpha);
    out[p * 3 + 1] = clamp(image[p * 3 + 1] * (1 - alpha) + g * alpha);
    out[p * 3 + 2] = clamp(image[p * 3 + 2] * (1 - alpha) + b * alpha);
  }
  return sharp(out, { raw: { width: size.width, height: size.height, channels: 3 } })
    .png()
    .toBuffer();
}

function jet(t: number): [number, number, number] {
  const f = (x: number) => Math.max(0, Math.min(1, x)) * 255;
  return [f(1.5 - Math.abs(4 * t - 3)), f(1.5 - Math.abs(4 * t - 2)), f(1.5 - Math.abs(4 * t - 1))];
}

const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
