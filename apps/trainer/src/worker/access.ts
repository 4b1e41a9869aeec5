// What a trainer may read and fetch on behalf of a sweep. Dataset and weights strings come from any member:
// local paths are read only under the operator's roots, URLs fetched only from allowed hosts, with a size
// cap and no redirect to another host, and what goes back to the API names no path of this machine.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, realpath, rename, rm } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HeadbenchInputError } from '@headbench/core';
import { TRAINER_LIMITS } from '@headbench/spec';

export interface AccessPolicy {
  /** Folders local datasets and weights may lie under (already resolved). */
  roots: string[];
  /** `host` (any port) or `host:port` entries downloads may come from; the API's own host is always one. */
  allowHosts: string[];
  maxDownloadBytes: number;
  maxUnpackedBytes: number;
}

/** The host did not answer at all (refused, reset, DNS, timeout). */
export class UnreachableError extends Error {}

/** The policy for a trainer: the operator's roots and hosts plus the ones it always needs. */
export function accessPolicy(o: {
  /** The API (or its instances): their hosts are always allowed. */
  api: string | string[];
  workDir: string;
  home: string;
  dataRoots?: string[];
  allowHosts?: string[];
  maxDownloadBytes?: number;
  maxUnpackedBytes?: number;
}): AccessPolicy {
  return {
    // Its own folders and caches; never all of home, which may hold the API's token and database.
    roots: [o.workDir, `${o.home}/datasets`, `${o.home}/cache`, ...(o.dataRoots ?? [])].map((r) =>
      resolve(r),
    ),
    allowHosts: [
      ...(Array.isArray(o.api) ? o.api : [o.api]).map((u) => new URL(u).host.toLowerCase()),
      ...(o.allowHosts ?? []).map((h) => h.toLowerCase()),
    ],
    maxDownloadBytes: o.maxDownloadBytes ?? TRAINER_LIMITS.downloadBytes,
    maxUnpackedBytes: o.maxUnpackedBytes ?? TRAINER_LIMITS.unpackedBytes,
  };
}

const inside = (root: string, p: string) => {
  const r = relative(root, p);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
};

/**
 * `path` (as a run names it) made absolute, with links followed, when it lies under one of the roots;
 * otherwise a HeadbenchInputError that names neither the path's target nor the roots' locations.
 */
export async function allowedLocalPath(path: string, policy: AccessPolicy, what: string): Promise<string> {
  const abs = resolve(path);
  const real = await realpath(abs).catch(() => abs);
  const roots = await Promise.all(policy.roots.map((r) => realpath(r).catch(() => r)));
  if (!roots.some((r) => inside(r, real)))
    throw new HeadbenchInputError(
      `${what} '${path.slice(0, 200)}' is outside the folders this trainer may read (its operator allows more with --data-root)`,
    );
  return real;
}

/** May this URL be fetched? Throws a HeadbenchInputError naming the host (never its answer) when not. */
export function allowedUrl(url: string, policy: AccessPolicy, what: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new HeadbenchInputError(`${what}: '${url.slice(0, 200)}' is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new HeadbenchInputError(`${what}: only http(s) URLs can be fetched`);
  if (u.username || u.password) throw new HeadbenchInputError(`${what}: URLs with credentials are refused`);
  const host = u.host.toLowerCase();
  const name = u.hostname.toLowerCase();
  if (!policy.allowHosts.some((h) => h === host || h === name))
    throw new HeadbenchInputError(
      `${what}: host ${host} is not one this trainer may fetch from (its operator allows hosts with --allow-host)`,
    );
  return u;
}

/**
 * Streams `url` into `file` (written as `file.part`, renamed when complete), refusing more than
 * `maxDownloadBytes`, redirects to another host and hosts the policy does not allow. Returns the sha256
 * and size of what was written. HTTP answers are logged here, never put into the error (it goes to the API).
 */
export async function downloadToFile(
  url: string,
  file: string,
  policy: AccessPolicy,
  o: {
    what: string;
    headers?: Record<string, string>;
    log?: (m: string) => void;
    timeoutMs?: number;
    /** The error for a non-2xx answer (default: refused, or retryable for 5xx/429, with no status). */
    refused?: (status: number) => Error;
  },
): Promise<{ sha256: string; size: number }> {
  let u = allowedUrl(url, policy, o.what);
  const origin = u.host;
  let res: Response;
  for (let hop = 0; ; hop++) {
    try {
      res = await fetch(u, {
        headers: o.headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(o.timeoutMs ?? 30 * 60_000),
      });
    } catch (e) {
      o.log?.(`${o.what}: fetching ${u.host} failed: ${(e as Error).message}`);
      // Unreachable: maybe later, maybe from another trainer (not bad input: retryable).
      throw new UnreachableError(`${o.what}: ${u.host} could not be reached`);
    }
    if (res.status < 300 || res.status >= 400) break;
    const location = res.headers.get('location');
    await res.body?.cancel();
    const next = location ? new URL(location, u) : undefined;
    if (!next || next.host !== origin || hop >= TRAINER_LIMITS.redirects)
      throw new HeadbenchInputError(
        `${o.what}: ${origin} redirected ${next && next.host !== origin ? 'to another host' : 'too often'}; refused`,
      );
    u = allowedUrl(next.toString(), policy, o.what);
  }
  if (!res.ok) {
    await res.body?.cancel();
    if (o.refused) throw o.refused(res.status);
    o.log?.(`${o.what}: ${u.host} answered HTTP ${res.status}`);
    // A server in trouble may recover (retryable); a missing or forbidden file will not.
    if (res.status >= 500 || res.status === 429)
      throw new Error(`${o.what}: the server at ${u.host} failed to send it`);
    throw new HeadbenchInputError(`${o.what}: the server at ${u.host} refused the download`);
  }
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  const tooBig = () =>
    new HeadbenchInputError(
      `${o.what}: larger than ${policy.maxDownloadBytes} bytes (HEADBENCH_MAX_DOWNLOAD_BYTES); refused`,
    );
  if (declared > policy.maxDownloadBytes) {
    await res.body?.cancel();
    throw tooBig();
  }
  await mkdir(dirname(file), { recursive: true });
  const part = `${file}.part`;
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size > policy.maxDownloadBytes) return done(tooBig());
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    if (!res.body) throw new HeadbenchInputError(`${o.what}: empty answer`);
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      meter,
      createWriteStream(part),
    );
    await rename(part, file);
  } catch (e) {
    await rm(part, { force: true });
    throw e;
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * `message` without this machine's paths: the known folders become `<work>`, `<home>`, `<data-root>`,
 * any other absolute path its last part only. For text that leaves the trainer (run.error, events).
 */
export function redactPaths(message: string, known: { label: string; path: string }[]): string {
  let out = message;
  for (const { label, path } of [...known].sort((a, b) => b.path.length - a.path.length)) {
    if (path.length > 1) out = out.split(path).join(label);
  }
  // Other absolute paths: keep the file name, drop where it lives. (`//` of URLs is left alone.)
  return out.replace(/(^|[\s'"`(=,:])(\/(?!\/)[^\s'"`(),:]*)/g, (_m, pre: string, p: string) => {
    const last = p.split(sep).filter(Boolean).pop();
    return `${pre}<path>${last ? `/${last}` : ''}`;
  });
}
