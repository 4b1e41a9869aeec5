import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Lets tfjs-backend-wasm 4.22 run its threaded-SIMD binary (XNNPACK with a pthread pool) under Node.
 *
 * Stock tfjs refuses threads in Node, and forcing them fails: Emscripten starts its pthread workers from
 * `URL.createObjectURL(blob)` URLs, which Node's worker_threads cannot load (ERR_WORKER_PATH ...
 * blob:nodedata:), and the worker then evals the module factory from a second Blob the same way.
 * While the backend initialises we record the text of the Blobs tfjs builds, and hand Emscripten real
 * files holding that text instead of blob: URLs:
 *  - main script: the module factory. It was cut out of tfjs's rollup bundle, so it refers to bundle
 *    variables (require$$0 = fs, ..., commonjsGlobal, __dirname) that we define in front of it.
 *  - worker script: Emscripten's pthread worker. In it `URL.createObjectURL` is redirected to the main
 *    script's file (the only Blob the worker ever turns into a URL).
 * Files are keyed by a hash of their contents in the OS temp dir and written atomically, so concurrent
 * processes share them.
 */

const FACTORY_PREFIX = 'var WasmBackendModuleThreadedSimd';

function writeShared(text: string, ext: string): string {
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const dir = sharedDir();
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${hash}${ext}`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  }
  return file;
}

function sharedDir(): string {
  return path.join(os.tmpdir(), 'headbench-wasm-threads');
}

function blobText(parts: unknown[] | undefined): string | null {
  if (parts == null || !parts.every((p) => typeof p === 'string')) return null;
  return (parts as string[]).join('');
}

/**
 * Runs `init` (which must initialise the wasm backend, after setThreadsCount(threads)) with Blob /
 * URL.createObjectURL patched as described above, then restores them. The binary also caps its pool at
 * (logical cores)/2, which it reads through os.cpus(): for the duration of init that reports 2x
 * `threads` cores so the count asked for is the count used.
 */
export async function withNodeThreads<T>(threads: number, init: () => Promise<T>): Promise<T> {
  const origCpus = os.cpus;
  os.cpus = () => {
    const cpus = origCpus();
    return Array.from({ length: 2 * threads }, (_, i) => cpus[i % cpus.length]);
  };
  const OrigBlob = globalThis.Blob;
  const origCreate = URL.createObjectURL;
  const texts = new WeakMap<Blob, string>();
  let mainScript: string | null = null;

  type BlobArgs = ConstructorParameters<typeof Blob>;
  class RecordingBlob extends OrigBlob {
    constructor(parts?: BlobArgs[0], options?: BlobArgs[1]) {
      super(parts ?? [], options);
      const text = blobText(parts);
      if (text !== null) {
        texts.set(this, text);
        if (text.startsWith(FACTORY_PREFIX)) mainScript = text;
      }
    }
  }

  const mainScriptFile = (): string => {
    if (mainScript === null) throw new Error('headbench: tfjs created no wasm module factory Blob');
    const prelude =
      "var require$$0 = require('fs'), require$$1 = require('path'), require$$3 = require('perf_hooks'), " +
      `require$$4 = require('os'), commonjsGlobal = globalThis, __dirname = ${JSON.stringify(sharedDir())};\n`;
    return writeShared(prelude + mainScript, '.main.cjs');
  };

  globalThis.Blob = RecordingBlob as typeof Blob;
  URL.createObjectURL = (obj: Blob) => {
    const text = obj instanceof OrigBlob ? texts.get(obj) : undefined;
    if (text === undefined) return origCreate(obj);
    if (text.startsWith(FACTORY_PREFIX)) return mainScriptFile();
    // The pthread worker script.
    const redirect = `URL.createObjectURL = () => ${JSON.stringify(mainScriptFile())};\n`;
    return writeShared(redirect + text, '.worker.cjs');
  };
  try {
    return await init();
  } finally {
    os.cpus = origCpus;
    globalThis.Blob = OrigBlob;
    URL.createObjectURL = origCreate;
  }
}

interface NodeWorkerLike {
  unref(): void;
}

/**
 * XNNPACK's pool threads wait for work for the life of the process, and Emscripten keeps a running
 * pthread's worker ref'd: the process would never exit by itself. Unref them; they do no work the
 * main thread is not synchronously waiting for.
 */
export function unrefPoolWorkers(backend: unknown): void {
  const pthread = (backend as { wasm?: { PThread?: Record<string, NodeWorkerLike[]> } }).wasm?.PThread;
  if (pthread == null) return;
  for (const w of [...(pthread.runningWorkers ?? []), ...(pthread.unusedWorkers ?? [])]) w.unref();
}
