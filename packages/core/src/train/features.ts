import { createHash } from 'node:crypto';
import { type FileHandle, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { fuseForInference } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Batch } from '../data/loader.js';
import type { PreprocessMode } from '../data/preprocess.js';

/**
 * Frozen-backbone fast path: a backbone's feature maps computed once per image (and per augmentation view),
 * stored on disk, and shared by every head trained on them. A sweep of six heads costs one backbone pass.
 * Keyed by everything that changes the features: dataset hash, backbone, weights, input size, preprocessing,
 * augmentation and the split.
 */
export interface FeatureKey {
  datasetHash: string;
  backbone: string;
  alpha?: number;
  /** sha256 of the backbone's weight values as loaded (random init included): a replaced file changes it. */
  weights: string;
  size: number;
  preprocess: PreprocessMode;
  augment?: unknown;
  views: number;
  indices: number[];
}

export function featureKeyHash(key: FeatureKey): string {
  return createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 32);
}

interface Meta {
  shape: [number, number, number];
  views: number;
  /** Dataset indices of the rows, in row order (images that failed to decode are absent). */
  rows: number[];
}

/** One file per view; rows are images in `rows` order; each row is H·W·C float32. */
export class FeatureStore {
  private readonly rowOf = new Map<number, number>();
  private readonly rowFloats: number;
  private readonly memory: Array<Float32Array | undefined>;
  private handles: Array<FileHandle | undefined> = [];
  private readonly inMemory: boolean;

  private constructor(
    readonly dir: string,
    readonly meta: Meta,
    memoryBudget: number,
  ) {
    meta.rows.forEach((index, row) => this.rowOf.set(index, row));
    this.rowFloats = meta.shape[0] * meta.shape[1] * meta.shape[2];
    // Small stores (the 1360-image case) are read whole; large ones are read row by row from disk.
    const bytes = meta.rows.length * this.rowFloats * 4 * meta.views;
    this.memory = new Array(meta.views).fill(undefined);
    this.inMemory = bytes <= memoryBudget;
  }

  get shape(): [number, number, number] {
    return this.meta.shape;
  }

  has(index: number): boolean {
    return this.rowOf.has(index);
  }

  static async open(dir: string, memoryBudget = 2 * 2 ** 30): Promise<FeatureStore | undefined> {
    const raw = await readFile(join(dir, 'meta.json'), 'utf8').catch(() => undefined);
    if (!raw) return undefined;
    return new FeatureStore(dir, JSON.parse(raw) as Meta, memoryBudget);
  }

  /**
   * Compute and store features for `indices` × `views` with `backbone` (inference mode), unless present.
   */
  static async build(
    dir: string,
    backbone: tfl.LayersModel,
    indices: readonly number[],
    options: {
      views: number;
      /** Preprocessed images of `chunk` as view `view` (an augmentation draw, a shifted crop...). */
      batch: (chunk: number[], view: number) => Promise<Batch>;
      batchSize?: number;
      onProgress?: (done: number, total: number) => void;
    },
  ): Promise<FeatureStore> {
    const existing = await FeatureStore.open(dir);
    if (existing) return existing;
    const tmp = `${dir}.tmp-${process.pid}-${threadId}`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const batchSize = options.batchSize ?? 16;
    let shape: [number, number, number] | undefined;
    let rows: number[] = [];
    const total = indices.length * options.views;
    let done = 0;
    // BN folded into the convs and ReLUs fused: the backbone only runs forward here (2-4x on MobileNetV2).
    const graph = fuseForInference(backbone);
    try {
      for (let view = 0; view < options.views; view++) {
        const file = await open(join(tmp, `view${view}.f32`), 'w');
        const viewRows: number[] = [];
        try {
          for (let i = 0; i < indices.length; i += batchSize) {
            const chunk = indices.slice(i, i + batchSize);
            const batch = await options.batch(chunk, view);
            if (batch.y.length > 0) {
              const feats = tf.tidy(() => graph.predict(tf.tensor4d(batch.x, batch.shape)) as tf.Tensor);
              const data = (await feats.data()) as Float32Array;
              shape ??= feats.shape.slice(1) as [number, number, number];
              feats.dispose();
              await file.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
              viewRows.push(...batch.indices);
            }
            done += chunk.length;
            options.onProgress?.(done, total);
          }
        } finally {
          await file.close();
        }
        if (view === 0) rows = viewRows;
        else if (viewRows.join() !== rows.join())
          throw new Error('feature views disagree on which images decoded');
      }
    } finally {
      graph.dispose();
    }
    if (!shape) throw new Error('no image could be decoded to extract features');
    await writeFile(
      join(tmp, 'meta.json'),
      JSON.stringify({ shape, views: options.views, rows } satisfies Meta),
    );
    await mkdir(join(dir, '..'), { recursive: true });
    // Another process or thread may have finished the same features first: theirs are identical, keep them.
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      if (!(await FeatureStore.open(dir))) throw err;
    });
    await rm(tmp, { recursive: true, force: true });
    return (await FeatureStore.open(dir))!;
  }

  /** Features of `indices` (view `view`) as one NHWC batch; indices without features are skipped. */
  async batch(indices: readonly number[], view = 0): Promise<{ x: Float32Array; indices: number[] }> {
    const kept = indices.filter((i) => this.rowOf.has(i));
    const out = new Float32Array(kept.length * this.rowFloats);
    const v = Math.min(view, this.meta.views - 1);
    if (this.inMemory) {
      const all = await this.viewData(v);
      kept.forEach((index, k) => {
        const r = this.rowOf.get(index)!;
        out.set(all.subarray(r * this.rowFloats, (r + 1) * this.rowFloats), k * this.rowFloats);
      });
    } else {
      this.handles[v] ??= await open(join(this.dir, `view${v}.f32`), 'r');
      const fh = this.handles[v]!;
      const bytes = this.rowFloats * 4;
      for (const [k, index] of kept.entries()) {
        const r = this.rowOf.get(index)!;
        await fh.read(new Uint8Array(out.buffer, k * bytes, bytes), 0, bytes, r * bytes);
      }
    }
    return { x: out, indices: kept };
  }

  private async viewData(v: number): Promise<Float32Array> {
    if (!this.memory[v]) {
      const buf = await readFile(join(this.dir, `view${v}.f32`));
      // Small files come from Node's shared pool at any offset; Float32Array needs 4-byte alignment.
      const aligned = buf.byteOffset % 4 === 0 ? buf : Buffer.from(buf);
      this.memory[v] = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
    }
    return this.memory[v]!;
  }

  async close(): Promise<void> {
    for (const h of this.handles) await h?.close();
    this.handles = [];
  }
}
