import type { AugmentOptions } from './data/augment.js';

/** Backbones built layer for layer like Keras applications (include_top=False), plus two small CPU nets. */
export const BACKBONE_NAMES = [
  'vgg16',
  'vgg19',
  'inceptionv3',
  'resnet50',
  'mobilenetv2',
  'smallcnn',
  'nin',
] as const;
export type BackboneName = (typeof BACKBONE_NAMES)[number];

/** Pooling selector (timm's SelectAdaptivePool2d; Keras applications' `pooling=`). */
export const POOLING_NAMES = ['flatten', 'avg', 'max', 'avgmax', 'catavgmax', 'gem'] as const;
export type PoolingName = (typeof POOLING_NAMES)[number];

/**
 * Heads: `fc` = Flatten → Dense(hidden, relu) → Dense(classes, softmax), the reference experiment's FC head;
 * `nin` = 1×1 conv to one map per class → GAP → softmax (Network In Network's own head, no Dense);
 * the others = pooling → (dropout) → Dense(classes, softmax).
 */
export const HEAD_NAMES = ['fc', 'gap', 'gmp', 'avgmax', 'catavgmax', 'gem', 'nin'] as const;
export type HeadName = (typeof HEAD_NAMES)[number];

export const HEAD_POOLING: Record<HeadName, PoolingName> = {
  fc: 'flatten',
  gap: 'avg',
  gmp: 'max',
  avgmax: 'avgmax',
  catavgmax: 'catavgmax',
  gem: 'gem',
  nin: 'avg',
};

/** `rmsprop` is Keras's update (ε outside the square root); `rmsprop-tfjs` is tfjs's (ε inside). */
export const OPTIMIZER_NAMES = ['rmsprop', 'rmsprop-tfjs', 'adam', 'sgd'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/** `frozen`, `all` (fine-tune everything) or the last N blocks of the backbone. */
export type Trainable = 'frozen' | 'all' | number;

export const BACKEND_NAMES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** Everything one run needs: the API stores it, a trainer runs exactly it. */
export interface RunConfig {
  /** Dataset URI: folder path, `idx:<images>,<labels>`, `generated:flowers17?...`. */
  dataset: string;
  /** Explicit class order (Keras `classes=`); default sorted folder names. */
  classes?: string[];
  /** `train:val:test` ("6:1:1") or `train:test` ("7:1", the default) with validation carved from train. */
  split?: string;
  /** Share of the training part held out for validation with a `train:test` ratio (default 1/8). */
  valFraction?: number;
  /** Seed of the split (default 0: one split for every run); `seed` uses the run's seed (repeated splits). */
  splitSeed?: number | 'seed';
  backbone: BackboneName;
  /** MobileNetV2 width multiplier (0.35–1.4). */
  alpha?: number;
  /** `none`, a tfjs layers model path or URL, a checkpoint path, or `run:<id>`. */
  weights: string;
  trainable: Trainable;
  head: HeadName;
  /** Hidden units of the `fc` head (default 512). */
  hidden?: number;
  dropout?: number;
  optimizer: OptimizerName;
  lr: number;
  /** Keras-style time decay: lr / (1 + decay · iterations). */
  decay: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  batchSize: number;
  epochs: number;
  seed: number;
  /** Square input side in pixels. */
  size: number;
  augment?: AugmentOptions;
  /** Stop when the monitored metric has not improved for `patience` epochs. */
  earlyStopping?: { monitor: 'val_loss' | 'val_accuracy'; patience: number };
  /** Test images that get a class activation map (heads whose pooling feeds the classifier directly). */
  camSamples?: number;
  /**
   * Shifts (fractions of the width) for the translation-robustness test, default 0, 1/16, 1/8, 1/4: offset crops
   * of the image resized a little larger, in both directions on both axes.
   */
  shifts?: number[];
}

export const DEFAULT_SHIFTS = [0, 1 / 16, 1 / 8, 1 / 4];

/** The split seed a run uses: its own seed with repeated splits, else the fixed split seed (default 0). */
export function resolvedSplitSeed(config: Pick<RunConfig, 'seed' | 'splitSeed'>): number {
  return config.splitSeed === 'seed' ? config.seed : (config.splitSeed ?? 0);
}
