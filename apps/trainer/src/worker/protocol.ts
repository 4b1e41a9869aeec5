// Messages between the trainer process and its per-slot training children (Node IPC).
import type { BackendName, BatchMetrics, EpochMetrics, RunConfig, RunResult } from '@headbench/core';

export interface ChildJob {
  runId: string;
  /** The config the child trains: the API's, with the dataset URI made local and `requires` removed. */
  config: RunConfig;
  /** The API's config (written into result.json as the run's truth). */
  apiConfig: RunConfig;
  /** runConfigHash of the API's config: checkpoints leave the child under it, so any trainer can resume them. */
  canonicalHash: string;
  runDir: string;
  home: string;
  backend: BackendName;
  /** Local model folder the trainer fetched and checked for the run's weights (run:, path or URL). */
  weightsPath?: string;
  /** The lease's attempt (1-based). */
  attempt: number;
}

export type ToChild = { type: 'start'; job: ChildJob } | { type: 'abort' } | { type: 'stopAfterEpoch' };

export interface FinalFile {
  path: string;
  name: string;
  kind: 'figure' | 'cam' | 'confusion' | 'report' | 'checkpoint' | 'model';
}

export type FromChild =
  | { type: 'batch'; m: BatchMetrics }
  | { type: 'epoch'; m: EpochMetrics; checkpoint?: string }
  | { type: 'log'; message: string }
  | { type: 'phase'; phase: string }
  | { type: 'done'; result: RunResult; files: FinalFile[] }
  | { type: 'error'; message: string; stopped: boolean; retryable: boolean };
