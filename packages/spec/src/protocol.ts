/**
 * The trainer protocol: what a trainer process sends to the API and gets back.
 * Trainers never see database credentials; they hold a `trainer` token and call these tRPC procedures
 * (POST /trpc/trainer.<name>, `Authorization: Bearer <token>`), plus:
 *  - PUT /artifacts/:runId/:name?kind=<ArtifactKind>&epoch=<n>&leaseId=<uuid>  (raw body, size-limited)
 *  - socket.io namespace /trainers (auth: { token, trainerId }) which pushes `cancel` { runId, reason }
 *    and `work` {} (new runs are queued: lease now instead of waiting for the next poll), and takes
 *    `metrics` { runId, leaseId, points } with an ack (MetricsAck): the cheap ingest path, same checks
 *    and idempotency as reportMetrics, which stays as the fallback.
 *
 * Flow: register → lease (poll, or on `work`) → heartbeat every ≤ leaseSeconds/3 with held runs →
 * reportMetrics (batched; safe to resend) → uploadArtifact checkpoints → complete | fail | release.
 * What a run needs to read comes with its lease (`dataset`, `weights`): a trainer token may GET exactly
 * those (the referenced model artifact, the uploaded dataset archive) and its held runs' own artifacts.
 * Every run-scoped call carries { runId, leaseId }; a stale lease (expired and handed to someone else,
 * or canceled) is answered 403/409 and the trainer must drop the run.
 */

import { z } from 'zod';
import { strict } from './fields.ts';
import type { ParamCounts, RunSummary } from './results.ts';
import type { RunConfig } from './run-config.ts';

export const ARTIFACT_KINDS = [
  'checkpoint',
  'figure',
  'cam',
  'confusion',
  'report',
  'features',
  'model',
] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];
export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Limits, also enforced server-side. */
export const LIMITS = {
  /** Points per reportMetrics call. */
  metricBatch: 5000,
  /** Default bytes per artifact upload (env HEADBENCH_MAX_ARTIFACT_BYTES). */
  artifactBytes: 512 * 1024 * 1024,
  metricName: 64,
  /** Default bytes per dataset upload (env HEADBENCH_MAX_DATASET_BYTES). */
  datasetBytes: 2 * 1024 * 1024 * 1024,
} as const;

export const DATASET_FORMATS = ['zip', 'tar', 'tgz'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

const uuid = z.uuid();
const name = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\w.\-:@]+$/, 'letters, digits and . - _ : @ only');

/** What a trainer can run. A run with `requires` is only leased to trainers meeting it. */
export const Capabilities = z.object({
  /** tfjs backend: tensorflow, wasm, cpu... */
  backend: z.string().min(1).max(32),
  gpu: z.boolean().default(false),
  /** Memory available for training, bytes. */
  memory: z.number().int().nonnegative().optional(),
});
export type Capabilities = z.infer<typeof Capabilities>;

/** Run requirements, inside a run's config as `requires`. */
export const Requirements = strict({
  gpu: z.boolean().optional(),
  backend: z
    .string()
    .regex(/^[\w.-]{1,32}$/, { error: 'must be a backend name (letters, digits, . - _; at most 32)' })
    .optional(),
});
export type Requirements = z.infer<typeof Requirements>;

export const RegisterInput = z.object({
  /** Stable per machine/process slot; re-registering with the same name reuses the trainer row. */
  name,
  host: z.string().max(255).optional(),
  devices: z
    .array(z.object({ kind: z.string().max(32), name: z.string().max(128) }))
    .max(64)
    .default([]),
  slots: z.number().int().min(1).max(64).default(1),
  capabilities: Capabilities,
});
export type RegisterInput = z.input<typeof RegisterInput>;
export const RegisterOutput = z.object({
  trainerId: uuid,
  /** Lease length: heartbeat well within it (every leaseSeconds / 3). */
  leaseSeconds: z.number(),
  heartbeatSeconds: z.number(),
});
export type RegisterOutput = z.infer<typeof RegisterOutput>;

export const LeaseInput = z.object({
  trainerId: uuid,
  /** How many runs the trainer can start now. */
  freeSlots: z.number().int().min(0).max(64),
  /** Optional override of the registered capabilities (e.g. memory now free). */
  capabilities: Capabilities.optional(),
});
export type LeaseInput = z.input<typeof LeaseInput>;

export interface LeasedRun {
  runId: string;
  leaseId: string;
  /** 1-based attempt number; > 1 after a lost lease or a retry. */
  attempt: number;
  leaseExpiresAt: string;
  sweepId: string | null;
  config: RunConfig & { requires?: Requirements };
  /**
   * Resume from here when present (the run's latest checkpoint artifact); `sha256` of its bytes as stored,
   * to check before resuming.
   */
  resume: { artifactId: string; epoch: number; downloadPath: string; sha256: string } | null;
  /** Highest step already stored per metric name, so a resumed run can skip what it already sent. */
  lastSteps: Record<string, number>;
  /**
   * The dataset registry's record when the run's dataset is `dataset:<name>` or a registered URI:
   * its content hash (check it), and for uploaded datasets the archive to GET with the trainer token.
   */
  dataset: LeasedDataset | null;
  /** For `weights: run:<id>`: that run's final model artifact (GET downloadPath with the trainer token). */
  weights: { runId: string; artifactId: string; downloadPath: string; sha256: string; size: number } | null;
  /**
   * For `weights: npm:<package>/<model>`: the packaged model as the API read it from its installed package
   * (trainers need not install it): GET each file with the trainer token and check its sha256. Null when
   * the API could not read the package. Absent from older APIs.
   */
  packaged?: LeasedPackaged | null;
}
export interface LeasedPackaged {
  source: string;
  package: string;
  version: string;
  model: string;
  /** sha256 of the weight bytes (weights.bin), as recorded in model.json and in results. */
  sha256: string;
  files: { name: 'model.json' | 'weights.bin'; downloadPath: string; sha256: string; size: number }[];
}
export interface LeasedDataset {
  name: string;
  uri: string;
  contentHash: string | null;
  classes: string[];
  archive: { downloadPath: string; sha256: string; size: number; format: DatasetFormat } | null;
}
export interface LeaseOutput {
  runs: LeasedRun[];
  leaseSeconds: number;
}

export const HeldRun = z.object({ runId: uuid, leaseId: uuid, epoch: z.number().int().min(0).optional() });
export const HeartbeatInput = z.object({
  trainerId: uuid,
  runs: z.array(HeldRun).max(64).default([]),
});
export type HeartbeatInput = z.input<typeof HeartbeatInput>;
export interface HeartbeatOutput {
  leaseSeconds: number;
  /** One entry per held run: `cancel: true` means stop it now (canceled, or the lease was lost). */
  runs: { runId: string; cancel: boolean; reason?: string; leaseExpiresAt?: string }[];
}

export const MetricPoint = z.object({
  /** loss, accuracy, val_loss, val_accuracy, lr, images_per_s... (batch series use `batch/` prefix). */
  name: z
    .string()
    .min(1)
    .max(LIMITS.metricName)
    .regex(/^[\w./-]+$/, 'letters, digits and . / - _ only'),
  /** Monotonic per series; (run, name, step) is the idempotency key. */
  step: z.number().int().min(0).max(2_147_483_647),
  epoch: z.number().int().min(0).max(2_147_483_647).optional(),
  value: z.number().refine(Number.isFinite, 'must be finite'),
  /** ms since epoch; default: server time. */
  time: z.number().int().positive().optional(),
});
export type MetricPoint = z.infer<typeof MetricPoint>;

export const ReportMetricsInput = z.object({
  runId: uuid,
  leaseId: uuid,
  points: z.array(MetricPoint).min(1).max(LIMITS.metricBatch),
});
export type ReportMetricsInput = z.input<typeof ReportMetricsInput>;
export interface ReportMetricsOutput {
  /** Points stored now; resent points already stored are skipped. */
  inserted: number;
  duplicates: number;
  cancel: boolean;
}

/**
 * Reply to a `metrics` message on the /trainers socket ({ runId, leaseId, points }, same rules as
 * reportMetrics). Errors carry the HTTP status tRPC would have answered: 400 malformed (nothing stored),
 * 401 token revoked, 403 the trainer no longer holds the run (canceled, lease lost), 500 server trouble.
 */
export type MetricsAck =
  | ({ ok: true } & ReportMetricsOutput)
  | { ok: false; status: number; code: string; error: string };

const ParamCountsSchema = z.object({
  trainable: z.number().int().nonnegative(),
  frozen: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  backbone: z.number().int().nonnegative(),
  head: z.number().int().nonnegative(),
}) satisfies z.ZodType<ParamCounts>;

export const CompleteInput = z.object({
  runId: uuid,
  leaseId: uuid,
  backend: z.string().max(32).optional(),
  params: ParamCountsSchema.optional(),
  /** RunSummary from @headbench/core (test accuracy, confusion, shifted accuracies...). */
  summary: z.record(z.string(), z.unknown()).optional(),
  timings: z
    .object({ seconds: z.number().nonnegative(), featureSeconds: z.number().nonnegative().optional() })
    .optional(),
});
export type CompleteInput = z.input<typeof CompleteInput> & {
  summary?: RunSummary | Record<string, unknown>;
};

export const FailInput = z.object({
  runId: uuid,
  leaseId: uuid,
  error: z.string().min(1).max(10_000),
  /** true: worth another attempt elsewhere (OOM, lost device); false: the config itself is broken. */
  retryable: z.boolean().default(false),
});
export type FailInput = z.input<typeof FailInput>;

/**
 * Hands a held run back to the queue without using up an attempt (graceful trainer stop: SIGTERM/SIGINT).
 * The next attempt resumes from the run's newest stored checkpoint.
 */
export const ReleaseInput = z.object({
  runId: uuid,
  leaseId: uuid,
  reason: z.string().min(1).max(2000),
  /** Epoch of the checkpoint the trainer uploaded before releasing (informational; recorded in the event). */
  checkpointEpoch: z.number().int().min(0).optional(),
});
export type ReleaseInput = z.input<typeof ReleaseInput>;

export interface RunStateOutput {
  runId: string;
  status: RunStatus;
  attempt: number;
}

/** tRPC alternative to the HTTP PUT, for small artifacts (base64 body, ≤ 8 MiB). */
export const UploadArtifactInput = z.object({
  runId: uuid,
  leaseId: uuid,
  name: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[\w.-]+$/, 'letters, digits and . - _ only'),
  kind: z.enum(ARTIFACT_KINDS),
  epoch: z.number().int().min(0).optional(),
  contentBase64: z.string().max(Math.ceil((8 * 1024 * 1024 * 4) / 3) + 4),
});
export type UploadArtifactInput = z.input<typeof UploadArtifactInput>;
export interface ArtifactInfo {
  id: string;
  runId: string;
  kind: ArtifactKind;
  name: string;
  sha256: string;
  size: number;
  epoch: number | null;
  createdAt: string;
  downloadPath: string;
}

/** socket.io events. Dashboards: namespace `/live`, emit `subscribe` { rooms: ['run:<id>', 'sweep:<id>'] }. */
export interface LiveUpdate {
  room: string;
  /** Status changes since the last update, oldest first. */
  runs: {
    runId: string;
    sweepId: string | null;
    status: RunStatus;
    attempt: number;
    at: string;
    error?: string;
  }[];
  /** Stored metric points since the last update, grouped by run. */
  metrics: {
    runId: string;
    points: { name: string; step: number; epoch: number | null; value: number; time: number }[];
  }[];
}
/** Trainers: namespace `/trainers`. */
export interface TrainerPush {
  cancel: { runId: string; reason: string };
  work: Record<string, never>;
}
