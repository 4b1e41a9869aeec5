// The trainer's side of the API: a typed client plus the error classes the worker acts on.
import {
  createHeadbenchClient,
  type HeadbenchClient,
  type ReportMetricsInput,
  type ReportMetricsOutput,
  reportMetricsOverSocket,
} from '@headbench/client';
import type { Socket } from 'socket.io-client';
import { type AccessPolicy, downloadToFile, UnreachableError } from './access.js';

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

/**
 * The request never got an answer from that instance (refused, reset, DNS, timeout): another instance
 * may well answer. An HTTP status, even 5xx, means the instance is there.
 */
export function unreachable(e: unknown): boolean {
  const c = classify(e);
  return c.transient && c.status === undefined;
}

export class ApiLink {
  /** Instances of one API (same database), tried in turn: the trainer talks to one at a time. */
  readonly urls: string[];
  private clients: HeadbenchClient[];
  private at = 0;
  private switched: ((url: string) => void)[] = [];

  constructor(
    urls: string | string[],
    readonly token: string,
  ) {
    this.urls = (Array.isArray(urls) ? urls : [urls]).map((u) => u.replace(/\/$/, ''));
    if (!this.urls.length) throw new Error('ApiLink: no API URL');
    // No batching: each call is its own request, so one slow call never holds back a heartbeat.
    this.clients = this.urls.map((url) => createHeadbenchClient({ url, token, batch: false }));
  }

  /** The instance in use now. */
  get url(): string {
    return this.urls[this.at];
  }

  get client(): HeadbenchClient {
    return this.clients[this.at];
  }

  /** Called with the new URL whenever the link moves to another instance. */
  onSwitch(fn: (url: string) => void) {
    this.switched.push(fn);
  }

  /**
   * A call to `url` failed: when that instance did not answer at all and it is still the one in use, move
   * to the next. Passing the URL the call went to keeps several calls failing together from skipping
   * past a working instance.
   */
  noteFailure(e: unknown, url: string): boolean {
    if (this.urls.length < 2 || url !== this.url || !unreachable(e)) return false;
    this.at = (this.at + 1) % this.urls.length;
    this.socketBackoffUntil = 0; // the new instance's socket gets its own chance
    for (const fn of this.switched) fn(this.url);
    return true;
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
    const url = this.url;
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
    try {
      const out = await this.client.trainer.reportMetrics.mutate(input);
      this.metricsVia.trpc++;
      return out;
    } catch (e) {
      // A tRPC call that got no answer (noteFailure checks: no HTTP status) moves the link; a refusal does not.
      this.noteFailure(e, url);
      throw e;
    }
  }

  /** Retries transient failures until `signal` aborts; other errors are thrown at once. */
  async retry<T>(
    what: string,
    fn: () => Promise<T>,
    signal?: AbortSignal,
    log?: (m: string) => void,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const url = this.url;
      try {
        return await fn();
      } catch (e) {
        this.noteFailure(e, url);
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
    const url = this.url;
    const res = await fetch(`${url}/artifacts/${q.runId}/${encodeURIComponent(q.name)}?${params}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(body),
      signal: AbortSignal.timeout(120_000),
    }).catch((e) => {
      this.noteFailure(e, url);
      throw e;
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
  async downloadTo(path: string, file: string, policy: AccessPolicy, what: string, token = this.token) {
    const url = this.url;
    try {
      return await downloadToFile(`${url}${path}`, file, policy, {
        what,
        headers: { authorization: `Bearer ${token}` },
        timeoutMs: 600_000,
        refused: (status) => new HttpError(`${what}: the API answered ${status}`, status),
      });
    } catch (e) {
      // Only silence moves the link: a refusal or a broken limit is the same on every instance.
      if (e instanceof UnreachableError) this.noteFailure(e, url);
      throw e;
    }
  }

  async download(path: string, token = this.token): Promise<Buffer> {
    const url = this.url;
    const res = await fetch(`${url}${path}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(600_000),
    }).catch((e) => {
      this.noteFailure(e, url);
      throw e;
    });
    if (!res.ok)
      throw new HttpError(
        `GET ${path} failed (${res.status}): ${(await res.text()).slice(0, 300)}`,
        res.status,
      );
    return Buffer.from(await res.arrayBuffer());
  }
}
