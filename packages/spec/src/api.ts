// The API's contract: every tRPC procedure with who may call it, its input schema and its output type.
// The API's router is checked against it at compile time and @headbench/client is typed from it, so
// neither needs the other's code.
import { z } from 'zod';
import { BACKBONES, type BackboneFacts } from './backbones.ts';
import { text } from './fields.ts';
import {
  BACKBONE_NAMES,
  BACKEND_NAMES,
  type BackboneName,
  HEAD_NAMES,
  OPTIMIZER_NAMES,
  POOLING_NAMES,
  TRAINABLE_MODES,
} from './names.ts';
import {
  ARTIFACT_KINDS,
  type ArtifactInfo,
  type ArtifactKind,
  CompleteInput,
  DATASET_FORMATS,
  type DatasetFormat,
  FailInput,
  HeartbeatInput,
  type HeartbeatOutput,
  LeaseInput,
  type LeaseOutput,
  RegisterInput,
  type RegisterOutput,
  ReleaseInput,
  ReportMetricsInput,
  type ReportMetricsOutput,
  RUN_STATUSES,
  type RunStateOutput,
  type RunStatus,
  UploadArtifactInput,
} from './protocol.ts';
import { SweepSpec } from './sweep.ts';

export const TOKEN_ROLES = ['admin', 'member', 'trainer'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];
export const SWEEP_STATUSES = ['active', 'canceled', 'done'] as const;
export type SweepStatus = (typeof SWEEP_STATUSES)[number];
export const TRAINER_STATES = ['idle', 'busy', 'offline'] as const;
export type TrainerState = (typeof TRAINER_STATES)[number];

/**
 * Who may call a procedure: `token` any valid token; `user` people (admin, member; trainer tokens get 403);
 * `admin`; `trainer` trainer tokens (and admins, for tools).
 */
export type Access = 'token' | 'user' | 'admin' | 'trainer';
export type ProcedureKind = 'query' | 'mutation';

/** One procedure of the contract. `output` exists only in the type (what the API answers). */
export interface Procedure<K extends ProcedureKind, I extends z.ZodType | null, O> {
  readonly kind: K;
  readonly access: Access;
  readonly input: I;
  readonly output?: O;
}
export type AnyProcedure = Procedure<ProcedureKind, z.ZodType | null, unknown>;
export interface Contract {
  readonly [name: string]: AnyProcedure | Contract;
}

const procedure =
  <K extends ProcedureKind>(kind: K) =>
  <I extends z.ZodType | null>(access: Access, input: I) => ({
    returns: <O>(): Procedure<K, I, O> => ({ kind, access, input }),
  });
const query = procedure('query');
const mutation = procedure('mutation');

// ------------------------------------------------------------------ inputs

export const IdInput = z.strictObject({ id: z.uuid() });
export const SweepListInput = z
  .object({
    status: z.enum(SWEEP_STATUSES).optional(),
    limit: z.number().int().min(1).max(500).default(50),
  })
  .default({ limit: 50 });
/** `failed`: requeue the sweep's failed and canceled runs in place; `all`: a new sweep with the same spec. */
export const RerunInput = z.object({ id: z.uuid(), mode: z.enum(['failed', 'all']).default('all') });
const Scalar = z.union([z.string().max(1000), z.number(), z.boolean()]);
export const RunListInput = z
  .object({
    sweepId: z.uuid().optional(),
    status: z.enum(RUN_STATUSES).optional(),
    /** Config equality filters, e.g. { head: 'gap', backbone: 'vgg16' }. */
    config: z.record(z.string().max(64), Scalar).optional(),
    limit: z.number().int().min(1).max(1000).default(200),
    offset: z.number().int().min(0).default(0),
  })
  .default({ limit: 200, offset: 0 });
export const RunMetricsInput = z.object({
  runId: z.uuid(),
  names: z.array(z.string().max(64)).max(50).optional(),
  /** Only points after this step: reconnecting dashboards fetch what they missed. */
  sinceStep: z.number().int().min(-1).optional(),
  maxPoints: z.number().int().min(2).max(100_000).default(1000),
});
export const RunCompareInput = z
  .object({
    runIds: z.array(z.uuid()).min(1).max(2000).optional(),
    sweepId: z.uuid().optional(),
    metric: z.string().min(1).max(64).default('val_accuracy'),
    /** Config key (dots for nesting), e.g. `head`, `backbone`, `earlyStopping.monitor`. */
    groupBy: z.string().min(1).max(64).default('head'),
    maxPoints: z.number().int().min(2).max(10_000).default(500),
  })
  .refine((v) => v.runIds || v.sweepId, { message: 'give runIds or sweepId', path: ['runIds'] });
export const DatasetRegisterInput = z.object({
  name: z.string().min(1).max(128),
  uri: z.string().min(1).max(2000),
  contentHash: z.string().max(128).optional(),
  classes: z.array(z.string().min(1).max(200)).max(100_000).default([]),
  trainCount: z.number().int().min(0).optional(),
  testCount: z.number().int().min(0).optional(),
});
export const ArtifactListInput = z.object({ runId: z.uuid(), kind: z.enum(ARTIFACT_KINDS).optional() });
export const TokenCreateInput = z.object({
  name: text(128),
  role: z.enum(TOKEN_ROLES),
  /** User the token acts for (created if new); default: the caller. */
  user: text(128).optional(),
});

// ------------------------------------------------------------------ outputs

export interface MetaNames {
  backbones: BackboneName[];
  /** Per-backbone facts: minimum and default input size, preprocessing, block count, alphas. */
  backboneFacts: Record<BackboneName, BackboneFacts>;
  heads: (typeof HEAD_NAMES)[number][];
  optimizers: (typeof OPTIMIZER_NAMES)[number][];
  trainable: (typeof TRAINABLE_MODES)[number][];
  backends: (typeof BACKEND_NAMES)[number][];
  poolings: (typeof POOLING_NAMES)[number][];
  artifactKinds: ArtifactKind[];
  datasetFormats: DatasetFormat[];
}
/** The names a form offers, straight from this package. */
export const META_NAMES: MetaNames = {
  backbones: [...BACKBONE_NAMES],
  backboneFacts: BACKBONES,
  heads: [...HEAD_NAMES],
  optimizers: [...OPTIMIZER_NAMES],
  trainable: [...TRAINABLE_MODES],
  backends: [...BACKEND_NAMES],
  poolings: [...POOLING_NAMES],
  artifactKinds: [...ARTIFACT_KINDS],
  datasetFormats: [...DATASET_FORMATS],
};

/** Runs per status, e.g. { queued: 3, succeeded: 6 }. */
export type StatusCounts = Partial<Record<RunStatus, number>>;
export interface SweepListItem {
  id: string;
  name: string;
  status: SweepStatus;
  createdAt: string;
  parentId: string | null;
  creatorId: string | null;
  /** The creating user's name; null when that user was deleted. */
  creator: string | null;
  runs: StatusCounts;
}
export interface SweepDetail extends SweepListItem {
  /** The spec as submitted (after defaults): download it, edit it, submit it again. */
  spec: SweepSpec;
}
export interface RunRecord {
  id: string;
  sweepId: string | null;
  index: number;
  config: Record<string, unknown>;
  status: RunStatus;
  attempt: number;
  maxAttempts: number;
  trainerId: string | null;
  leaseExpiresAt: string | null;
  checkpointEpoch: number | null;
  checkpointArtifactId: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  summary: Record<string, unknown> | null;
  params: Record<string, number> | null;
  timings: { seconds: number; featureSeconds?: number } | null;
  backend: string | null;
  error: string | null;
}
export interface RunEvent {
  type: string;
  attempt: number;
  data: Record<string, unknown> | null;
  at: string;
}
export interface RunDetail extends RunRecord {
  events: RunEvent[];
  artifacts: ArtifactInfo[];
}
export interface SeriesPoint {
  step: number;
  epoch: number | null;
  value: number;
  /** Present when points were merged into this bucket. */
  min?: number;
  max?: number;
  n?: number;
  time: number;
}
export type RunSeries = Record<string, SeriesPoint[]>;
export interface RunComparison {
  metric: string;
  groupBy: string;
  groups: {
    key: string;
    runIds: string[];
    points: { step: number; mean: number; std: number | null; n: number }[];
  }[];
}
export interface TrainerInfo {
  id: string;
  name: string;
  host: string | null;
  backend: string | null;
  devices: { kind: string; name: string }[];
  slots: number;
  capabilities: Record<string, unknown> | null;
  state: TrainerState;
  lastHeartbeat: string | null;
  runningRunIds: string[];
}
export interface DatasetInfo {
  id: string;
  name: string;
  uri: string;
  contentHash: string | null;
  classes: string[];
  trainCount: number | null;
  testCount: number | null;
  /** Uploaded archive (PUT /datasets/:name): GET downloadPath with the same token. */
  archive: { format: DatasetFormat; sha256: string; size: number; downloadPath: string } | null;
  createdAt: string;
}
export interface TokenInfo {
  id: string;
  name: string;
  role: TokenRole;
  prefix: string;
  user: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

// ------------------------------------------------------------------ the contract

export const apiContract = {
  whoami: query('token', null).returns<{ role: TokenRole; name: string }>(),
  meta: {
    /** Valid names for sweep forms (trainable also takes a block count ≥ 1). */
    names: query('token', null).returns<MetaNames>(),
  },
  sweeps: {
    create: mutation('user', SweepSpec).returns<{ id: string; runs: number; runIds: string[] }>(),
    list: query('user', SweepListInput).returns<SweepListItem[]>(),
    get: query('user', IdInput).returns<SweepDetail>(),
    cancel: mutation('user', IdInput).returns<{ canceled: number }>(),
    rerun: mutation('user', RerunInput).returns<{ sweepId: string; requeued: number }>(),
  },
  runs: {
    list: query('user', RunListInput).returns<RunRecord[]>(),
    get: query('user', IdInput).returns<RunDetail>(),
    metrics: query('user', RunMetricsInput).returns<RunSeries>(),
    compare: query('user', RunCompareInput).returns<RunComparison>(),
    cancel: mutation('user', IdInput).returns<RunStateOutput>(),
    retry: mutation('user', IdInput).returns<RunStateOutput>(),
  },
  trainers: {
    list: query('user', null).returns<TrainerInfo[]>(),
  },
  live: {
    /**
     * A short-lived, read-only ticket for the /live socket (`auth: { ticket }`): what a browser holds
     * instead of the token. It dies with the token (revocation) or at `expiresAt`.
     */
    ticket: query('user', null).returns<{ ticket: string; expiresAt: string }>(),
  },
  datasets: {
    register: mutation('user', DatasetRegisterInput).returns<DatasetInfo>(),
    list: query('user', null).returns<DatasetInfo[]>(),
  },
  artifacts: {
    list: query('user', ArtifactListInput).returns<ArtifactInfo[]>(),
    /** Where to GET the bytes (same token): the store may later hand out signed URLs instead. */
    download: query('user', IdInput).returns<{
      id: string;
      name: string;
      size: number;
      sha256: string;
      path: string;
    }>(),
  },
  tokens: {
    /** The secret is in this response only; the server keeps its sha256. */
    create: mutation('admin', TokenCreateInput).returns<{
      id: string;
      name: string;
      role: TokenRole;
      token: string;
    }>(),
    list: query('admin', null).returns<TokenInfo[]>(),
    revoke: mutation('admin', IdInput).returns<{ revoked: boolean }>(),
  },
  /** The trainer protocol (see protocol.ts). */
  trainer: {
    register: mutation('trainer', RegisterInput).returns<RegisterOutput>(),
    lease: mutation('trainer', LeaseInput).returns<LeaseOutput>(),
    heartbeat: mutation('trainer', HeartbeatInput).returns<HeartbeatOutput>(),
    reportMetrics: mutation('trainer', ReportMetricsInput).returns<ReportMetricsOutput>(),
    complete: mutation('trainer', CompleteInput).returns<RunStateOutput>(),
    fail: mutation('trainer', FailInput).returns<RunStateOutput>(),
    /** Hand a held run back to the queue without using up an attempt (graceful stop). */
    release: mutation('trainer', ReleaseInput).returns<RunStateOutput>(),
    uploadArtifact: mutation('trainer', UploadArtifactInput).returns<ArtifactInfo>(),
  },
} as const satisfies Contract;
export type ApiContract = typeof apiContract;

/** Calls the contract's procedures by path; `walkContract` visits every one (the client and tests build on it). */
export function walkContract(
  contract: Contract,
  visit: (path: string, p: AnyProcedure) => void,
  prefix = '',
): void {
  for (const [name, node] of Object.entries(contract)) {
    const path = prefix ? `${prefix}.${name}` : name;
    if ('kind' in node && typeof node.kind === 'string') visit(path, node as AnyProcedure);
    else walkContract(node as Contract, visit, path);
  }
}

/** What the client calls: `query(input)` or `mutate(input)` per procedure, typed from the contract. */
type Call<I, O> = I extends z.ZodType
  ? undefined extends z.input<I>
    ? (input?: z.input<I>) => Promise<O>
    : (input: z.input<I>) => Promise<O>
  : () => Promise<O>;
export type ContractClient<C> = {
  [K in keyof C]: C[K] extends Procedure<infer Kind, infer I, infer O>
    ? Kind extends 'query'
      ? { query: Call<I, O> }
      : { mutate: Call<I, O> }
    : ContractClient<C[K]>;
};
export type ProcedureOutput<P> = P extends Procedure<ProcedureKind, z.ZodType | null, infer O> ? O : never;
