import type { Augment } from '@headbench/spec';
import type { Rng } from '../rng.js';
import type { ImageSize } from './types.js';

/** Augmentation options: the run config's `augment`, bounded in @headbench/spec. */
export type AugmentOptions = Augment;

export interface Affine {
  flip: boolean;
  dx: number;
  dy: number;
  degrees: number;
}

export function isAugmenting(a: AugmentOptions | undefined): boolean {
  return !!a && (!!a.horizontalFlip || (a.shift ?? 0) > 0 || (a.rotation ?? 0) > 0);
}

/** Draw one augmentation from `rng` (always the same number of draws, so streams stay aligned). */
export function drawAffine(a: AugmentOptions, size: ImageSize, rng: Rng): Affine {
  const flip = rng.next() < 0.5;
  const sx = rng.uniform(-1, 1);
  const sy = rng.uniform(-1, 1);
  const rot = rng.uniform(-1, 1);
  const shift = a.shift ?? 0;
  return {
    flip: !!a.horizontalFlip && flip,
    dx: Math.round(sx * shift * size.width),
    dy: Math.round(sy * shift * size.height),
    degrees: rot * (a.rotation ?? 0),
  };
}

/**
 * Apply flip, rotation about the centre and a shift to one RGB HWC image.
 * Pixels that come from outside the image are filled: `nearest` repeats the edge (Keras' default),
 * `constant` uses `fillValue`. (The translation-robustness test does not warp: it crops, see shift.ts.)
 */
export function warpImage(
  src: Float32Array,
  size: ImageSize,
  t: Affine,
  fill: 'nearest' | 'constant' = 'nearest',
  fillValue = 0,
): Float32Array {
  const { height: h, width: w } = size;
  const out = new Float32Array(src.length);
  const rad = (t.degrees * Math.PI) / 180;
  const cos = Math.cos(rad);
  const sin = Math.sin(rad);
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const integer = t.degrees === 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // Inverse map output (x, y) to a source position.
      let ux = x - t.dx - cx;
      const uy = y - t.dy - cy;
      if (t.flip) ux = -ux;
      const sxf = cos * ux + sin * uy + cx;
      const syf = -sin * ux + cos * uy + cy;
      const o = (y * w + x) * 3;
      if (integer) {
        const sx = Math.round(sxf);
        const sy = Math.round(syf);
        if (sx < 0 || sy < 0 || sx >= w || sy >= h) {
          if (fill === 'constant') {
            out[o] = out[o + 1] = out[o + 2] = fillValue;
            continue;
          }
        }
        const i = (clamp(sy, h) * w + clamp(sx, w)) * 3;
        out[o] = src[i];
        out[o + 1] = src[i + 1];
        out[o + 2] = src[i + 2];
        continue;
      }
      if (fill === 'constant' && (sxf < -0.5 || syf < -0.5 || sxf > w - 0.5 || syf > h - 0.5)) {
        out[o] = out[o + 1] = out[o + 2] = fillValue;
        continue;
      }
      // Bilinear sampling with edge clamping.
      const x0 = Math.floor(sxf);
      const y0 = Math.floor(syf);
      const fx = sxf - x0;
      const fy = syf - y0;
      const a = (clamp(y0, h) * w + clamp(x0, w)) * 3;
      const b = (clamp(y0, h) * w + clamp(x0 + 1, w)) * 3;
      const c = (clamp(y0 + 1, h) * w + clamp(x0, w)) * 3;
      const d = (clamp(y0 + 1, h) * w + clamp(x0 + 1, w)) * 3;
      for (let k = 0; k < 3; k++) {
        out[o + k] =
          (src[a + k] * (1 - fx) + src[b + k] * fx) * (1 - fy) +
          (src[c + k] * (1 - fx) + src[d + k] * fx) * fy;
      }
    }
  }
  return out;
}

const clamp = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
