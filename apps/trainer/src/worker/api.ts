// The trainer's side of the API: a typed client plus the error classes the worker acts on.
import {
  createHeadbenchClient,
  type HeadbenchClient,
  type ReportMetricsInput,
  type ReportMetricsOutput,
  reportMetricsOverSocket,
} from '@headbench/client';
import type { Socket } from 'socket.io-client';
import { type AccessPolicy, downloadToFile } from './access.js';

/** The API answered that this trainer no longer holds the run (canceled, lease lost): drop it. */
export class LeaseLostError extends Error {}

export interface ErrorClass {
  /** Unreachable, restarting, 5xx: keep the data and try again later. */
  transient: boolean;
  /** 403/409/404 on a run-scoped call: the run is not ours any more. */
  leaseLost: boolean;
  status?: number;
  message: string;
}

export function classify(e: unknown): ErrorClass {
  const err = e as { message?: string; data?: { httpStatus?: number; code?: string }; status?: number };
  const status = err?.data?.httpStatus ?? err?.status;
  const message = err?.message ?? String(e);
  // Local file errors (a missing artifact file...) never heal by retrying.
  if ((e as { syscall?: string })?.syscall && !/ECONN|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN/.test(message))
    return { transient: false, leaseLost: false, message };
  if (status === undefined) return { transient: true, leaseLost: false, message };
  if (status >= 500 || status === 429 || status === 408)
    return { transient: true, leaseLost: false, status, message };
  return { transient: false, leaseLost: status === 403 || status === 409 || status === 404, status, message };
}

export class HttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

/** Exponential backoff with jitter: 0.25 s, 0.5 s, ... capped at `max` ms. */
export const backoff = (attempt: number, max = 5000) =>
  Math.min(max, 250 * 2 ** Math.min(attempt, 10)) * (0.75 + Math.random() * 0.5);

export class ApiLink {
  readonly client: HeadbenchClient;
  constructor(
    readonly url: string,
    readonly token: string,
  ) {
    // No batching: each call is its own request, so one slow call never holds back a heartbeat.
    this.client = createHeadbenchClient({ url, token, batch: false });
  }

  /** The trainer's /trainers socket: metrics go over it while it is connected. */
  socket?: Socket;
  /** Batches sent per transport (logs, tests). */
  readonly metricsVia = { socket: 0, trpc: 0 };
  /** After the socket path failed without an answer (dropped, timed out, an API without it): tRPC until then. */
  private socketBackoffUntil = 0;

  /**
   * trainer.reportMetrics, over the socket when it is connected, else (and for a while after the socket
   * path failed without an answer) over HTTP. Both are idempotent, so a batch whose ack was lost can be
   * resent on either. Refusals (400/403...) are thrown as from tRPC, with `status`.
   */
  async reportMetrics(input: ReportMetricsInput): Promise<ReportMetricsOutput> {
    const s = this.socket;
    if (s?.connected && Date.now() >= this.socketBackoffUntil) {
      try {
        const out = await reportMetricsOverSocket(s, input);
        this.metricsVia.socket++;
        return out;
      } catch (e) {
        if ((e as { status?: number }).status === undefined) this.socketBackoffUntil = Date.now() + 30_000;
        throw e;
      }
    }
    const out = await this.client.trainer.reportMetrics.mutate(input);
    this.metricsVia.trpc++;
    return out;
  }

  /** Retries transient failures until `signal` aborts; other errors are thrown at once. */
  async retry<T>(
    what: string,
    fn: () => Promise<T>,
    signal?: AbortSignal,
    log?: (m: string) => void,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        const c = classify(e);
        if (!c.transient || signal?.aborted) throw e;
        if (attempt === 0 || attempt % 10 === 0) log?.(`${what}: API unreachable (${c.message}); retrying`);
        await sleep(backoff(attempt), signal);
      }
    }
  }

  async upload(
    q: { runId: string; leaseId: string; name: string; kind: string; epoch?: number },
    body: Buffer,
  ) {
    const params = new URLSearchParams({ kind: q.kind, leaseId: q.leaseId });
    if (q.epoch !== undefined) params.set('epoch', String(q.epoch));
    const res = await fetch(`${this.url}/artifacts/${q.runId}/${encodeURIComponent(q.name)}?${params}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(body),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await res.text();
    if (!res.ok)
      throw new HttpError(`upload ${q.name} failed (${res.status}): ${text.slice(0, 300)}`, res.status);
    return JSON.parse(text) as { id: string; sha256: string };
  }

  /**
   * GETs an API path (an artifact, an uploaded dataset) into `file`, streamed under the download cap.
   * Refusals keep their status (`classify` tells a lost lease from a hiccup).
   */
  downloadTo(path: string, file: string, policy: AccessPolicy, what: string, token = this.token) {
    return downloadToFile(`${this.url}${path}`, file, policy, {
      what,
      headers: { authorization: `Bearer ${token}` },
      timeoutMs: 600_000,
      refused: (status) => new HttpError(`${what}: the API answered ${status}`, status),
    });
  }

  async download(path: string, token = this.token): Promise<Buffer> {
    const res = await fetch(`${this.url}${path}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(600_000),
    });
    if (!res.ok)
      throw new HttpError(
        `GET ${path} failed (${res.status}): ${(await res.text()).slice(0, 300)}`,
        res.status,
      );
    return Buffer.from(await res.arrayBuffer());
  }
}
