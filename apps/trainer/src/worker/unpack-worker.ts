// The worker-thread side of unpack.ts: the readers and the limits, without @headbench/core (a worker
// that only unpacks starts fast and small).
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import type { MessagePort } from 'node:worker_threads';
import { createGunzip } from 'node:zlib';
import { TRAINER_LIMITS } from '@headbench/spec';
import { Unpack } from 'tar';
import yauzl from 'yauzl';

export type ArchiveFormat = 'zip' | 'tar' | 'tgz';

export interface UnpackLimits {
  /** Most bytes the archive may unpack to (for tar: the decompressed stream, headers included). */
  maxBytes: number;
  maxEntries?: number;
  maxRatio?: number;
}

export interface UnpackJob {
  file: string;
  format: ArchiveFormat;
  dest: string;
  limits: UnpackLimits;
  /** Shown in errors instead of the file's path (a dataset name, `model.tar`...). */
  label: string;
}

export type Reply =
  | { ok: true; entries: number; bytes: number }
  | { ok: false; message: string; code?: string };

/** A limit was broken or the archive is malformed: the input is bad, another attempt cannot help. */
class ArchiveRefused extends Error {
  readonly code = 'ARCHIVE_REFUSED';
}

/** Errors of this machine, not of the archive: a full disk heals, another trainer may have room. */
const SYSTEM_CODES = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'EACCES', 'EROFS', 'ENOMEM']);

/** The error to report: a system error as it is, anything else the archive's fault. */
function refusal(e: unknown, job: UnpackJob): Error {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof ArchiveRefused || SYSTEM_CODES.has(err.code ?? '')) return err;
  return new ArchiveRefused(`${job.label}: not a readable ${job.format} archive (${err.message})`);
}

/** Worker-thread side: unpack and post one Reply. */
export async function unpackInThread(port: MessagePort | null, job: UnpackJob): Promise<void> {
  try {
    const out = await unpackHere(job);
    port?.postMessage({ ok: true, ...out } satisfies Reply);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    port?.postMessage({ ok: false, message: err.message || String(e), code: err.code } satisfies Reply);
  }
}

/** Counts what comes out against the limits; the first broken one is thrown as ArchiveRefused. */
class Meter {
  bytes = 0;
  entries = 0;
  constructor(
    private job: UnpackJob,
    private packed: number,
  ) {}
  private get maxEntries() {
    return this.job.limits.maxEntries ?? TRAINER_LIMITS.archiveEntries;
  }
  private get maxRatio() {
    return this.job.limits.maxRatio ?? TRAINER_LIMITS.archiveRatio;
  }
  entry() {
    if (++this.entries > this.maxEntries)
      throw new ArchiveRefused(
        `${this.job.label}: archive holds more than ${this.maxEntries} entries (the limit); refusing it`,
      );
  }
  add(n: number) {
    this.bytes += n;
    const { maxBytes } = this.job.limits;
    if (this.bytes > maxBytes)
      throw new ArchiveRefused(
        `${this.job.label}: archive unpacks to more than ${maxBytes} bytes (HEADBENCH_MAX_UNPACKED_BYTES); refusing it`,
      );
    if (this.bytes > TRAINER_LIMITS.ratioGraceBytes && this.bytes > this.maxRatio * Math.max(1, this.packed))
      throw new ArchiveRefused(
        `${this.job.label}: archive unpacks to more than ${this.maxRatio}× its size (a decompression bomb?); refusing it`,
      );
  }
}

async function unpackHere(job: UnpackJob): Promise<{ entries: number; bytes: number }> {
  const packed = (await stat(job.file)).size;
  await mkdir(job.dest, { recursive: true });
  const meter = new Meter(job, packed);
  if (job.format === 'zip') await unzip(job, meter);
  else await untar(job, meter);
  return { entries: meter.entries, bytes: meter.bytes };
}

/** Resource forks and AppleDouble files that macOS adds to archives: never part of a dataset. */
const junk = (path: string) => path.split('/').some((s) => s === '__MACOSX' || s.startsWith('._'));

function untar(job: UnpackJob, meter: Meter): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    const source = createReadStream(job.file);
    const stream = job.format === 'tgz' ? source.pipe(createGunzip()) : source;
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      source.destroy();
      if (stream !== source) stream.destroy();
      reject(refusal(e, job));
    };
    const unpack = new Unpack({
      cwd: job.dest,
      strict: true,
      preserveOwner: false,
      maxDepth: 64,
      filter: (path, entry) => {
        if (failed) return false;
        try {
          meter.entry();
        } catch (e) {
          fail(e);
          return false;
        }
        const type = 'type' in entry ? entry.type : 'File';
        const regular = type === 'File' || type === 'OldFile' || type === 'ContiguousFile';
        return (regular || type === 'Directory') && !junk(path);
      },
    });
    unpack.on('error', fail);
    unpack.on('close', () => {
      if (!failed) resolve();
    });
    stream.on('error', fail);
    stream.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        meter.add(chunk.length);
      } catch (e) {
        return fail(e);
      }
      if (!unpack.write(chunk)) {
        stream.pause();
        unpack.once('drain', () => stream.resume());
      }
    });
    stream.on('end', () => {
      if (!failed) unpack.end();
    });
  });
}

function unzip(job: UnpackJob, meter: Meter): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    yauzl.open(
      job.file,
      // validateEntrySizes: an entry that inflates past its declared size is an error, not a surprise.
      { lazyEntries: true, autoClose: true, validateEntrySizes: true, strictFileNames: false },
      (openErr, zip) => {
        if (openErr)
          return reject(new ArchiveRefused(`${job.label}: not a readable zip archive (${openErr.message})`));
        let failed = false;
        const fail = (e: unknown) => {
          if (failed) return;
          failed = true;
          zip.close();
          reject(refusal(e, job));
        };
        zip.on('error', fail);
        zip.on('end', () => {
          if (!failed) resolve();
        });
        zip.on('entry', (entry: yauzl.Entry) => {
          if (failed) return;
          try {
            meter.entry();
          } catch (e) {
            return fail(e);
          }
          const name = entry.fileName;
          // yauzl has already refused absolute names, `..` segments and backslashes.
          if (name.endsWith('/') || junk(name)) return zip.readEntry();
          // Unix file type in the upper bits of the external attributes: only regular files (or none given).
          const type = (entry.externalFileAttributes >>> 16) & 0o170000;
          if (type !== 0 && type !== 0o100000) return zip.readEntry();
          if (entry.isEncrypted()) return fail(new ArchiveRefused(`${job.label}: ${name} is encrypted`));
          const path = `${job.dest}/${name}`;
          mkdir(path.slice(0, path.lastIndexOf('/')), { recursive: true }).then(() => {
            zip.openReadStream(entry, (err, input) => {
              if (err) return fail(err);
              // wx: a second entry of the same name is an error, never an overwrite.
              const out = createWriteStream(path, { flags: 'wx' });
              out.on('error', fail);
              input.on('error', fail);
              input.on('data', (chunk: Buffer) => {
                try {
                  meter.add(chunk.length);
                } catch (e) {
                  input.destroy();
                  out.destroy();
                  return fail(e);
                }
                if (!out.write(chunk)) {
                  input.pause();
                  out.once('drain', () => input.resume());
                }
              });
              input.on('end', () => out.end());
              out.on('finish', () => {
                if (!failed) zip.readEntry();
              });
            });
          }, fail);
        });
        zip.readEntry();
      },
    );
  });
}
