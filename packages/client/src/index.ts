// @headbench/client: a client for the headbench API typed from the contract in @headbench/spec (no code
// from the API app), socket helpers, and the trainer protocol's HTTP calls.

import {
  type AnyProcedure,
  type ApiContract,
  type ArtifactInfo,
  type ArtifactKind,
  apiContract,
  type Contract,
  type ContractClient,
  type DatasetFormat,
  type LiveUpdate,
  type MetricsAck,
  type ReportMetricsInput,
  type ReportMetricsOutput,
} from '@headbench/spec';
import { createTRPCUntypedClient, httpBatchLink, httpLink, type TRPCUntypedClient } from '@trpc/client';
import type { TRPCBuiltRouter, TRPCDefaultErrorShape, TRPCRouterRecord } from '@trpc/server';
import { io, type Socket } from 'socket.io-client';

export * from '@headbench/spec';

export interface ClientOptions {
  /** API base URL, e.g. http://127.0.0.1:4000 (the dashboard's own origin for its proxy). */
  url: string;
  /** Sent as `Authorization: Bearer`; omit it behind a proxy that adds it (the dashboard's). */
  token?: string;
  /** Path of the tRPC endpoint under `url` (default /trpc). */
  path?: string;
  /** Batch calls made in the same tick into one request (default true). Trainers may prefer false. */
  batch?: boolean;
  /** Longest GET URL of a batch before it is split (default: no limit). */
  maxURLLength?: number;
}

/** A client with every procedure of the contract: `client.sweeps.create.mutate(spec)`, `client.runs.get.query({ id })`. */
export type HeadbenchClient = ContractClient<ApiContract>;

/** A router with no procedures known and no transformer: the contract supplies the types. */
type Untyped = TRPCUntypedClient<
  TRPCBuiltRouter<
    { ctx: object; meta: object; errorShape: TRPCDefaultErrorShape; transformer: false },
    TRPCRouterRecord
  >
>;

function bind(contract: Contract, untyped: Untyped, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, node] of Object.entries(contract)) {
    const path = prefix ? `${prefix}.${name}` : name;
    if ('kind' in node && typeof node.kind === 'string') {
      out[name] =
        (node as AnyProcedure).kind === 'query'
          ? { query: (input?: unknown) => untyped.query(path, input) }
          : { mutate: (input?: unknown) => untyped.mutation(path, input) };
    } else out[name] = bind(node as Contract, untyped, path);
  }
  return out;
}

export function createHeadbenchClient({
  url,
  token,
  path = '/trpc',
  batch = true,
  maxURLLength,
}: ClientOptions): HeadbenchClient {
  const link = {
    url: `${url.replace(/\/$/, '')}${path}`,
    headers: () => (token ? { authorization: `Bearer ${token}` } : {}),
    ...(maxURLLength ? { maxURLLength } : {}),
  };
  const untyped = createTRPCUntypedClient({
    links: [batch ? httpBatchLink(link) : httpLink(link)],
  }) as Untyped;
  return bind(apiContract, untyped) as HeadbenchClient;
}
export interface LiveConnection {
  socket: Socket;
  /** Joins rooms (`run:<id>`, `sweep:<id>`); resolves once the server confirmed. */
  subscribe(rooms: string[]): Promise<void>;
  unsubscribe(rooms: string[]): Promise<void>;
  /** Coalesced status changes and metric points for the joined rooms. Returns an unsubscribe function. */
  onUpdate(fn: (u: LiveUpdate) => void): () => void;
  close(): void;
}

/**
 * Dashboard socket (namespace /live). Rooms are re-joined after a reconnect; use `runs.metrics` with
 * `sinceStep` to fetch points missed while disconnected.
 */
export function connectLive({ url, token }: { url: string; token: string }): LiveConnection {
  const socket = io(`${url.replace(/\/$/, '')}/live`, { auth: { token }, transports: ['websocket'] });
  const joined = new Set<string>();
  const ask = (event: string, rooms: string[]) =>
    new Promise<void>((resolve, reject) => {
      socket.emit(event, { rooms }, (ack: { ok: boolean; error?: string }) =>
        ack?.ok ? resolve() : reject(new Error(ack?.error ?? `${event} failed`)),
      );
    });
  socket.io.on('reconnect', () => {
    if (joined.size) void ask('subscribe', [...joined]).catch(() => {});
  });
  return {
    socket,
    async subscribe(rooms) {
      await ask('subscribe', rooms);
      for (const r of rooms) joined.add(r);
    },
    async unsubscribe(rooms) {
      await ask('unsubscribe', rooms);
      for (const r of rooms) joined.delete(r);
    },
    onUpdate(fn) {
      socket.on('update', fn);
      return () => socket.off('update', fn);
    },
    close: () => socket.close(),
  };
}

/**
 * Trainer socket (namespace /trainers): the API pushes `cancel` { runId, reason } and `work` {}; send metrics
 * over it with reportMetricsOverSocket.
 */
export function connectTrainerSocket({
  url,
  token,
  trainerId,
}: {
  url: string;
  token: string;
  trainerId: string;
}): Socket {
  return io(`${url.replace(/\/$/, '')}/trainers`, { auth: { token, trainerId }, transports: ['websocket'] });
}

/** A `metrics` message the API refused; `status` is what tRPC would have answered (400, 401, 403, 500). */
export class MetricsRefusedError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

/**
 * trainer.reportMetrics over the trainer socket (see connectTrainerSocket): same input, checks, idempotency
 * and reply, without a request per batch. Throws MetricsRefusedError when the API refuses the batch, and
 * a plain Error (no status: retry) when the socket is not connected, drops, or no ack comes in `timeoutMs`.
 */
export async function reportMetricsOverSocket(
  socket: Socket,
  input: ReportMetricsInput,
  timeoutMs = 15_000,
): Promise<ReportMetricsOutput> {
  // socket.io would buffer the emit until a reconnect; the caller should rather use another path.
  if (!socket.connected) throw new Error('trainer socket not connected');
  const ack = (await socket.timeout(timeoutMs).emitWithAck('metrics', input)) as MetricsAck;
  if (!ack?.ok) {
    const a = ack as Extract<MetricsAck, { ok: false }> | undefined;
    throw new MetricsRefusedError(
      `metrics refused (${a?.status ?? 500}): ${a?.error ?? 'malformed ack'}`,
      a?.status ?? 500,
      a?.code ?? 'INTERNAL_SERVER_ERROR',
    );
  }
  return { inserted: ack.inserted, duplicates: ack.duplicates, cancel: ack.cancel };
}

/** Streams an artifact with PUT /artifacts/:runId/:name (checkpoints: pass `epoch` so a retry can resume). */
export async function uploadArtifact(opts: {
  url: string;
  token: string;
  runId: string;
  leaseId: string;
  name: string;
  kind: ArtifactKind;
  epoch?: number;
  body: Uint8Array | Blob;
}): Promise<ArtifactInfo> {
  const q = new URLSearchParams({ kind: opts.kind, leaseId: opts.leaseId });
  if (opts.epoch !== undefined) q.set('epoch', String(opts.epoch));
  const res = await fetch(
    `${opts.url.replace(/\/$/, '')}/artifacts/${opts.runId}/${encodeURIComponent(opts.name)}?${q}`,
    {
      method: 'PUT',
      headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/octet-stream' },
      body: opts.body as NonNullable<Parameters<typeof fetch>[1]>['body'],
    },
  );
  const json = (await res.json()) as ArtifactInfo | { error: string };
  if (!res.ok) throw new Error(`upload failed (${res.status}): ${(json as { error: string }).error}`);
  return json as ArtifactInfo;
}

/** GET an artifact's bytes (e.g. the checkpoint named in a lease's `resume`). */
export async function downloadArtifact(opts: {
  url: string;
  token: string;
  path: string;
}): Promise<Uint8Array> {
  const res = await fetch(`${opts.url.replace(/\/$/, '')}${opts.path}`, {
    headers: { authorization: `Bearer ${opts.token}` },
  });
  if (!res.ok) throw new Error(`download failed (${res.status}): ${await res.text()}`);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Uploads a dataset archive (.zip, .tar or .tar.gz) with PUT /datasets/:name and registers it under `name`
 * (runs use `dataset:<name>`; trainers fetch it through the API with their own token, checked by sha256).
 */
export async function uploadDataset(opts: {
  url: string;
  token: string;
  name: string;
  format: DatasetFormat;
  body: Uint8Array | Blob;
  /** The dataset's content hash, when known: trainers check the unpacked set against it. */
  contentHash?: string;
  classes?: string[];
}): Promise<{
  id: string;
  name: string;
  uri: string;
  contentHash: string | null;
  archive: { format: DatasetFormat; sha256: string; size: number; downloadPath: string };
}> {
  const q = new URLSearchParams({ format: opts.format });
  if (opts.contentHash) q.set('contentHash', opts.contentHash);
  if (opts.classes?.length) q.set('classes', opts.classes.join(','));
  const res = await fetch(`${opts.url.replace(/\/$/, '')}/datasets/${encodeURIComponent(opts.name)}?${q}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/octet-stream' },
    body: opts.body as NonNullable<Parameters<typeof fetch>[1]>['body'],
  });
  const json = (await res.json()) as { error?: string };
  if (!res.ok) throw new Error(`dataset upload failed (${res.status}): ${json.error}`);
  return json as Awaited<ReturnType<typeof uploadDataset>>;
}
