// What a run produces: per-epoch and per-batch metrics, parameter counts, the summary of the Network-In-Network
// claims, and the result record compare and the API both keep.
import type { RunConfig } from './run-config.ts';

/** Metrics of one epoch. Accuracies in [0, 1]. */
export interface EpochMetrics {
  epoch: number;
  loss: number;
  accuracy: number;
  val_loss: number;
  val_accuracy: number;
  lr: number;
  /** Training throughput over the epoch. */
  images_per_s: number;
  /** Seconds since the run started, at the end of this epoch. */
  time_s: number;
}

/** Metrics of one training step (batch). */
export interface BatchMetrics {
  step: number;
  epoch: number;
  loss: number;
  accuracy: number;
  lr: number;
  images_per_s: number;
}

export interface ParamCounts {
  trainable: number;
  frozen: number;
  total: number;
  backbone: number;
  head: number;
}

/**
 * Test accuracy with the content shifted by `pixels` (`fraction` of the width): offset crops of the image resized
 * larger, averaged over right, left, down and up; `consistency` is the share of (image, direction) pairs whose
 * prediction equals the unshifted crop's. Fraction 0 is the centred crop itself.
 */
export interface ShiftResult {
  fraction: number;
  pixels: number;
  accuracy: number;
  consistency: number;
  /** Accuracy per direction: right, left, down, up (one value for fraction 0). */
  directions: number[];
}

/** Claims of the Network-In-Network paper, measured on one run at the validation-selected epoch. */
export interface RunSummary {
  /** 1-based epoch validation chose (best val accuracy, or val loss when early stopping monitors it). */
  selected_epoch: number;
  /** Validation accuracy at the selected epoch. */
  val_accuracy: number;
  /** Test accuracy and loss at the selected epoch: what tables and verdicts report. */
  test_accuracy: number;
  test_loss: number;
  /** Per-image correctness on the test set at the selected epoch, one bit per image in test order (hex). */
  test_correct: string;
  /** Test images evaluated (those that decoded). */
  test_count: number;
  /** Hash of the split's index lists: per-image comparisons pair only runs tested on the same images. */
  split_hash: string;
  /** Test accuracy and loss at the last epoch trained. */
  last_epoch: number;
  test_accuracy_last: number;
  test_loss_last: number;
  /** Accuracy on a fixed stratified sample of the training set, inference mode, no augmentation (selected epoch). */
  train_accuracy: number;
  /** train_accuracy − test_accuracy: the generalisation gap. */
  gap: number;
  /** confusion[true][predicted] counts on the test split at the selected epoch. */
  confusion: number[][];
  per_class_accuracy: number[];
  shifted: ShiftResult[];
  /** PNG files of class activation maps, relative to the output folder (empty when the head has no CAM). */
  cams: string[];
  /** Whether the maps decompose the class score (`exact`) or only suggest it (`approximate`). */
  cam_fidelity: 'exact' | 'approximate' | 'none';
}

/** The three sets a run used: its seed, a hash of the index lists and their sizes. */
export interface SplitRecord {
  ratio: string;
  valFraction?: number;
  seed: number;
  hash: string;
  train: number;
  val: number;
  test: number;
}

/** Backbone weights as a run loaded them. */
export interface WeightsProvenance {
  source: string;
  /** sha256 over the weights' names, shapes and values as loaded. */
  contentHash: string;
  /** For `npm:<package>/<model>`: the installed package's version and the sha256 of its weight bytes. */
  package?: { name: string; version: string; model: string; sha256: string };
}

/** Everything besides the config that changes a run's numbers. */
export interface Provenance {
  backend: string;
  threads: number;
  /** wasm only: SIMD kernels, and whether the engine's conv pool uses relaxed-SIMD fused multiply-add. */
  simd?: boolean;
  fma?: boolean;
  node: string;
  tfjs: string;
  /** `cached` when a frozen backbone's features came from the feature cache, else `off`. */
  featureCache: 'cached' | 'off';
  split: SplitRecord;
  /** The backbone weights as loaded: their source and a sha256 of their values. */
  weights: WeightsProvenance;
  /** Hash of the config (canonical JSON): equal hashes, equal computation. */
  configHash: string;
}

export interface RunResult {
  id: string;
  config: RunConfig;
  /** tfjs backend that ran it: tensorflow, wasm, cpu, webgl... */
  backend: string;
  dataset: {
    name: string;
    uri: string;
    contentHash: string;
    classes: string[];
    train: number;
    val?: number;
    test: number;
  };
  params: ParamCounts;
  epochs: EpochMetrics[];
  summary?: RunSummary;
  provenance?: Provenance;
  status: 'succeeded' | 'failed' | 'running';
  error?: string;
  timings: { started: string; finished?: string; seconds: number; featureSeconds?: number };
}
