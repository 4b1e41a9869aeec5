import type { Rng } from '../rng.js';
import { type Affine, type AugmentOptions, drawAffine, isAugmenting, warpImage } from './augment.js';
import { type PreprocessMode, preprocessInPlace } from './preprocess.js';
import type { ImageDataset, ImageSize } from './types.js';

/** A batch of preprocessed images, NHWC float32, with integer labels. */
export interface Batch {
  x: Float32Array;
  shape: [number, number, number, number];
  y: Int32Array;
  /** Dataset indices of the images in this batch. */
  indices: number[];
}

export interface LoaderOptions {
  /** Decoded-image cache budget in bytes (default 1.5 GiB: 1360 images at 224² fit; 100k do not). */
  cacheBytes?: number;
  /** Images decoded at once. */
  concurrency?: number;
}

export interface BatchOptions {
  batchSize: number;
  preprocess: PreprocessMode;
  /** Shuffle order with this RNG (consumed once per call); no RNG, dataset order. */
  shuffle?: Rng;
  augment?: AugmentOptions;
  /** RNG for augmentation draws (required when `augment` is set). */
  augmentRng?: Rng;
  /** Per-image transform instead of `augment` draws (training keys views by image and epoch, so runs resume exactly). */
  affine?: (index: number) => Affine | undefined;
}

/**
 * Decodes images on demand at one size and keeps an LRU cache of decoded pixels, so a dataset of
 * any size streams through a bounded amount of memory. The next batch is decoded while the current
 * one is used (sharp decodes on libuv's thread pool).
 */
export class ImageLoader {
  private readonly cache = new Map<number, Float32Array>();
  private readonly capacity: number;
  private readonly concurrency: number;
  private readonly failed = new Set<number>();

  constructor(
    readonly dataset: ImageDataset,
    readonly size: ImageSize,
    options: LoaderOptions = {},
  ) {
    const bytesPerImage = size.height * size.width * 3 * 4;
    this.capacity = Math.max(1, Math.floor((options.cacheBytes ?? 1.5 * 2 ** 30) / bytesPerImage));
    this.concurrency = options.concurrency ?? 8;
  }

  /** Images the cache can hold; the whole dataset when it fits. */
  get cacheCapacity(): number {
    return this.capacity;
  }

  get cachedCount(): number {
    return this.cache.size;
  }

  /** Raw RGB pixels in [0, 255] (do not modify), or undefined if the file failed to decode (then it is in `dataset.skipped`). */
  async image(index: number): Promise<Float32Array | undefined> {
    const hit = this.cache.get(index);
    if (hit) {
      this.cache.delete(index);
      this.cache.set(index, hit);
      return hit;
    }
    if (this.failed.has(index)) return undefined;
    let pixels: Float32Array;
    try {
      pixels = await this.dataset.read(index, this.size);
    } catch (err) {
      this.failed.add(index);
      this.dataset.skipped.push({
        path: this.dataset.sources[index],
        reason: `decode failed: ${(err as Error).message}`,
      });
      return undefined;
    }
    this.cache.set(index, pixels);
    if (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value as number);
    return pixels;
  }

  /** Decode the given images now (bounded concurrency); used to warm the cache. */
  async load(indices: readonly number[]): Promise<Array<Float32Array | undefined>> {
    const out: Array<Float32Array | undefined> = new Array(indices.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(this.concurrency, indices.length) }, async () => {
        while (next < indices.length) {
          const i = next++;
          out[i] = await this.image(indices[i]);
        }
      }),
    );
    return out;
  }

  /** Assemble one batch from dataset indices. Images that fail to decode are dropped (and reported). */
  async batch(
    indices: readonly number[],
    options: Omit<BatchOptions, 'batchSize' | 'shuffle'>,
  ): Promise<Batch> {
    const images = await this.load(indices);
    const kept = indices.filter((_, i) => images[i]);
    const { height: h, width: w } = this.size;
    const per = h * w * 3;
    const x = new Float32Array(kept.length * per);
    const y = new Int32Array(kept.length);
    const augmenting = isAugmenting(options.augment);
    if (augmenting && !options.augmentRng && !options.affine)
      throw new Error('augmentation needs augmentRng');
    let k = 0;
    indices.forEach((index, i) => {
      const img = images[i];
      if (!img) return;
      const t = options.affine
        ? options.affine(index)
        : augmenting
          ? drawAffine(options.augment!, this.size, options.augmentRng!)
          : undefined;
      const view = t ? warpImage(img, this.size, t) : img;
      x.set(view, k * per);
      y[k] = this.dataset.labels[index];
      k++;
    });
    preprocessInPlace(x, options.preprocess);
    return { x, shape: [kept.length, h, w, 3], y, indices: kept };
  }

  /** One epoch of batches over `indices`, with the next batch decoded while the current one is consumed. */
  async *batches(indices: readonly number[], options: BatchOptions): AsyncGenerator<Batch> {
    const order = [...indices];
    options.shuffle?.shuffle(order);
    const chunks: number[][] = [];
    for (let i = 0; i < order.length; i += options.batchSize)
      chunks.push(order.slice(i, i + options.batchSize));
    let pending = chunks.length > 0 ? this.batch(chunks[0], options) : undefined;
    for (let c = 0; c < chunks.length; c++) {
      const current = await pending!;
      pending = c + 1 < chunks.length ? this.batch(chunks[c + 1], options) : undefined;
      if (current.y.length > 0) yield current;
    }
  }
}
