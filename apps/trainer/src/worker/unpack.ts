// Unpacks dataset, model and checkpoint archives with maintained readers (`tar`, `yauzl`), streaming, under
// byte, entry-count and ratio limits, in a worker thread: a decompression bomb breaks a limit and fails its
// run as bad input instead of filling memory or the disk, and the trainer's event loop (heartbeats, other
// slots) never waits on inflate. Only regular files and folders come out: links and devices are skipped.
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { HeadbenchInputError } from '@headbench/core';
import type { Reply, UnpackJob } from './unpack-worker.js';

export type { ArchiveFormat, UnpackJob, UnpackLimits } from './unpack-worker.js';

const THREAD = fileURLToPath(new URL('../../bin/unpack-thread.js', import.meta.url));

/** The archive format a file name ends with, or undefined. */
export function archiveFormat(name: string): 'zip' | 'tar' | 'tgz' | undefined {
  const n = name.toLowerCase();
  if (n.endsWith('.zip')) return 'zip';
  if (n.endsWith('.tar.gz') || n.endsWith('.tgz')) return 'tgz';
  if (n.endsWith('.tar')) return 'tar';
  return undefined;
}

/**
 * Unpacks `job.file` into `job.dest` in a worker thread. A broken limit or a malformed archive rejects with
 * a HeadbenchInputError naming the limit; disk and other system errors keep their `code` (ENOSPC...).
 */
export function unpackArchive(job: UnpackJob): Promise<{ entries: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(THREAD, { workerData: job });
    let settled = false;
    worker.once('message', (r: Reply) => {
      settled = true;
      if (r.ok) resolve({ entries: r.entries, bytes: r.bytes });
      else if (r.code === 'ARCHIVE_REFUSED') reject(new HeadbenchInputError(r.message));
      else reject(Object.assign(new Error(r.message), r.code ? { code: r.code } : {}));
    });
    worker.once('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`unpacking ${job.label}: worker exited (${code}) without an answer`));
    });
  });
}
