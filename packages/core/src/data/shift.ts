import type { Batch, ImageLoader } from './loader.js';
import { type PreprocessMode, preprocessInPlace } from './preprocess.js';
import type { ImageSize } from './types.js';

/** One view of the translation-robustness test: the image's content moved by (dx, dy) pixels. */
export interface ShiftView {
  /** Shift as a fraction of the width (0 for the unshifted view). */
  fraction: number;
  dx: number;
  dy: number;
}

/**
 * The views the robustness test evaluates: the unshifted crop first, then for each non-zero fraction f the
 * content moved by round(f·width) pixels right, left, down and up (both directions on both axes).
 */
export function shiftViews(fractions: readonly number[], size: ImageSize): ShiftView[] {
  const views: ShiftView[] = [{ fraction: 0, dx: 0, dy: 0 }];
  for (const f of [...new Set(fractions)].filter((x) => x > 0).sort((a, b) => a - b)) {
    const d = Math.round(f * size.width);
    views.push(
      { fraction: f, dx: d, dy: 0 },
      { fraction: f, dx: -d, dy: 0 },
      { fraction: f, dx: 0, dy: d },
      { fraction: f, dx: 0, dy: -d },
    );
  }
  return views;
}

/**
 * The larger resize every crop is cut from: the input plus the largest shift on each side, so a shifted view
 * shows real image content (not a filled or smeared border) and differs from the unshifted one by translation only.
 */
export function shiftCanvas(views: readonly ShiftView[], size: ImageSize): ImageSize {
  const m = Math.max(0, ...views.map((v) => Math.max(Math.abs(v.dx), Math.abs(v.dy))));
  return { height: size.height + 2 * m, width: size.width + 2 * m };
}

/**
 * Cut a `size` crop from an RGB HWC image of `canvas` size, its content moved by (dx, dy): the crop's origin is
 * the centred one minus the shift, so a feature at (x, y) of the centred crop appears at (x + dx, y + dy).
 */
export function cropShifted(
  src: Float32Array,
  canvas: ImageSize,
  size: ImageSize,
  dx: number,
  dy: number,
): Float32Array {
  const x0 = (canvas.width - size.width) / 2 - dx;
  const y0 = (canvas.height - size.height) / 2 - dy;
  if (!(Number.isInteger(x0) && Number.isInteger(y0)))
    throw new RangeError('cropShifted: the canvas must exceed the crop by an even number of pixels');
  if (x0 < 0 || y0 < 0 || x0 + size.width > canvas.width || y0 + size.height > canvas.height)
    throw new RangeError(
      `cropShifted: a shift of (${dx}, ${dy}) px leaves the ${canvas.width}×${canvas.height} canvas`,
    );
  const out = new Float32Array(size.height * size.width * 3);
  const row = size.width * 3;
  for (let y = 0; y < size.height; y++) {
    const from = ((y0 + y) * canvas.width + x0) * 3;
    out.set(src.subarray(from, from + row), y * row);
  }
  return out;
}

/** Batches of shifted crops: `loader` decodes at the canvas size, each view is a crop of it. */
export class ShiftedCrops {
  constructor(
    readonly loader: ImageLoader,
    readonly views: readonly ShiftView[],
    readonly size: ImageSize,
  ) {}

  async batch(indices: readonly number[], view: number, preprocess: PreprocessMode): Promise<Batch> {
    const { dx, dy } = this.views[view];
    const images = await this.loader.load(indices);
    const kept = indices.filter((_, i) => images[i]);
    const per = this.size.height * this.size.width * 3;
    const x = new Float32Array(kept.length * per);
    const y = new Int32Array(kept.length);
    let k = 0;
    indices.forEach((index, i) => {
      const img = images[i];
      if (!img) return;
      x.set(cropShifted(img, this.loader.size, this.size, dx, dy), k * per);
      y[k++] = this.loader.dataset.labels[index];
    });
    preprocessInPlace(x, preprocess);
    return { x, shape: [kept.length, this.size.height, this.size.width, 3], y, indices: kept };
  }
}
