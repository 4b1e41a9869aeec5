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

/** Accuracy on the test split with inputs shifted right by `pixels` (`fraction` of the width). */
export interface ShiftResult {
  fraction: number;
  pixels: number;
  accuracy: number;
}

/** Claims of the Network-In-Network paper, measured on one run. */
export interface RunSummary {
  test_accuracy: number;
  test_loss: number;
  best_val_accuracy: number;
  /** 1-based epoch with the best val accuracy. */
  best_epoch: number;
  /** Train accuracy − val accuracy at the last epoch (overfitting). */
  final_gap: number;
  /** confusion[true][predicted] counts on the test split. */
  confusion: number[][];
  per_class_accuracy: number[];
  shifted: ShiftResult[];
  /** PNG files of class activation maps, relative to the output folder (empty when the head has no CAM). */
  cams: string[];
}

export interface RunResult {
  id: string;
  config: RunConfig;
  /** tfjs backend that ran it: tensorflow, wasm, cpu, webgl... */
  backend: string;
  dataset: { name: string; uri: string; contentHash: string; classes: string[]; train: number; test: number };
  params: ParamCounts;
  epochs: EpochMetrics[];
  summary?: RunSummary;
  status: 'succeeded' | 'failed' | 'running';
  error?: string;
  timings: { started: string; finished?: string; seconds: number; featureSeconds?: number };
}
