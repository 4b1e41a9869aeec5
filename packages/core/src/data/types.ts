/** Pixel layout used everywhere in headbench: HWC, RGB, float32 in [0, 255] before preprocessing. */
export interface ImageSize {
  height: number;
  width: number;
}

/** A file that could not be used, and why. Datasets never drop input silently. */
export interface SkippedFile {
  path: string;
  reason: string;
}

/**
 * A labelled image collection. Decoding is on demand (`read`), so a dataset of any size
 * can be opened; what is held in memory is decided by the batcher's cache.
 */
export interface ImageDataset {
  /** Short human name, e.g. the folder name or `generated:flowers17`. */
  readonly name: string;
  /** Where the data came from (path or URI); recorded in run results. */
  readonly uri: string;
  /** Class names; label i is `classes[i]`. */
  readonly classes: readonly string[];
  readonly size: number;
  readonly labels: Int32Array;
  /** A human-readable source per sample (file path, or `images.idx#123`). */
  readonly sources: readonly string[];
  /** Files that were found but not used. */
  readonly skipped: SkippedFile[];
  /** sha256 over the file list and bytes: caches and run records key on it. */
  readonly contentHash: string;
  /** Predefined split (from `train/` and `test/` subtrees or IDX file pairs), if any. */
  readonly predefinedSplit?: PredefinedSplit;
  /** Decode sample `index`, resized, as RGB HWC float32 in [0, 255]. */
  read(index: number, size: ImageSize): Promise<Float32Array>;
}

/** Dataset indices of each set: train fits the weights, val picks the epoch, test is read once training ends. */
export interface Split {
  train: number[];
  val: number[];
  test: number[];
}

/** A dataset's own train/test split (folders or IDX pairs); validation is carved from its train part. */
export interface PredefinedSplit {
  train: number[];
  test: number[];
}
