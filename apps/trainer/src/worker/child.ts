// One training run in its own process: a crash, an OOM kill or a wedged wasm instance takes down this
// child only, never the trainer. The parent sends `start`, then maybe `abort` / `stopAfterEpoch`.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import {
  HeadbenchInputError,
  RunStoppedError,
  runConfigHash,
  trainRun,
  validateRunConfig,
  writeReport,
} from '@headbench/core';
import { readEnv } from '@headbench/spec';
import type { ChildJob, FinalFile, FromChild, ToChild } from './protocol.js';
import { packDir } from './tar.js';

const send = (m: FromChild) =>
  new Promise<void>((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });

/** Artifact names allow letters, digits, `.`, `-` and `_`. */
export const safeName = (s: string) => s.replace(/[^\w.-]+/g, '_').slice(0, 200);

/** Checkpoint tar whose state.json carries the canonical config hash (see README: Trainer fleet). */
export async function packCheckpoint(dir: string, fromHash: string, toHash: string): Promise<Buffer> {
  return packDir(dir, (rel, data) => {
    if (rel !== 'state.json') return data;
    const state = JSON.parse(data.toString('utf8'));
    if (state.configHash === fromHash) state.configHash = toHash;
    return Buffer.from(JSON.stringify(state));
  });
}

/**
 * Test-only hook (HEADBENCH_TEST_HANG_AT=epoch:<n>, honoured when NODE_ENV=test): the first attempt blocks
 * for good at the first batch of epoch n, like a child spinning in a corrupt allocator; the parent's
 * watchdog must kill it and the run must finish on the next attempt.
 */
function testHangEpoch(attempt: number): number | undefined {
  const env = readEnv(process.env);
  if (env.NODE_ENV !== 'test' || !env.HEADBENCH_TEST_HANG_AT || attempt !== 1) return undefined;
  return Number(env.HEADBENCH_TEST_HANG_AT.slice('epoch:'.length));
}

/**
 * A trap inside wasm (out-of-bounds access, `unreachable`, emscripten's abort): tfjs's heap can no longer
 * be trusted, and whatever this process computes next may be wrong. The run fails as retryable and the
 * process exits; a fresh process on the next attempt starts from the last checkpoint.
 */
export function isWasmTrap(e: unknown): boolean {
  const RuntimeError = (globalThis as { WebAssembly?: { RuntimeError?: new () => Error } }).WebAssembly
    ?.RuntimeError;
  if (RuntimeError && e instanceof RuntimeError) return true;
  const m = e instanceof Error ? e.message : String(e);
  // By message too: a trap rethrown by other code may have lost its class.
  return /memory access out of bounds|^unreachable( executed)?$|^Aborted\(|^conv pool check:/.test(m);
}

/**
 * Test-only hook (HEADBENCH_TEST_HEAP_GROWTH=<every>[:<seed>], honoured when NODE_ENV=test): tfjs's wasm heap
 * is made to grow at chosen allocations, between kernels and inside conv pool calls (issue #11's guard).
 */
async function testHeapGrowth(job: ChildJob): Promise<(() => string) | undefined> {
  const env = readEnv(process.env);
  if (env.NODE_ENV !== 'test' || !env.HEADBENCH_TEST_HEAP_GROWTH || job.backend !== 'wasm') return undefined;
  const [every, seed] = env.HEADBENCH_TEST_HEAP_GROWTH.split(':').map(Number);
  const { initBackend, forceHeapGrowth } = await import('@headbench/engine');
  await initBackend('wasm');
  const { stats } = forceHeapGrowth({ every, seed });
  return () =>
    `heap growth forced: ${stats.grew} growths of ${stats.events} (tensor ${stats.sites.tensor}, pool ${stats.sites.pool})`;
}

async function run(job: ChildJob, control: { abort: AbortController; stop: boolean }) {
  const hangAt = testHangEpoch(job.attempt);
  const growth = await testHeapGrowth(job);
  const outbox = join(job.runDir, 'outbox');
  await mkdir(outbox, { recursive: true });
  const localHash = runConfigHash(validateRunConfig(job.config));
  const result = await trainRun({
    config: job.config,
    runId: job.runId,
    runDir: job.runDir,
    home: job.home,
    backend: job.backend,
    // The trainer fetched and checked every weights source (run:, path, URL): load only what it gave.
    weightsPath: job.weightsPath,
    resolveWeights: async (ref) => {
      throw new HeadbenchInputError(`weights '${ref}' were not fetched by the trainer`);
    },
    signal: control.abort.signal,
    stopAfterEpoch: () => control.stop,
    onBatch: (m) => {
      if (m.epoch === hangAt) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      void send({ type: 'batch', m });
    },
    onLog: (message) => void send({ type: 'log', message }),
    onPhase: (phase) => void send({ type: 'phase', phase }),
    onEpoch: async (m, ckpt) => {
      let checkpoint: string | undefined;
      if (ckpt) {
        // The checkpoint folder is overwritten next epoch: snapshot it now, the parent uploads it later.
        checkpoint = join(outbox, `checkpoint-${m.epoch}.tar`);
        await writeFile(checkpoint, await packCheckpoint(ckpt, localHash, job.canonicalHash));
      }
      await send({ type: 'epoch', m, checkpoint });
    },
  });
  if (growth) await send({ type: 'log', message: growth() });
  result.config = job.apiConfig;
  const files: FinalFile[] = [];
  // Per-run figures and report.md, rendered by the same code as `headbench compare`.
  const reportDir = join(job.runDir, 'report');
  await rm(reportDir, { recursive: true, force: true });
  const report = await writeReport([result], reportDir).catch(async (e) => {
    await send({ type: 'log', message: `report rendering failed: ${(e as Error).message}` });
    return { files: [] as string[] };
  });
  for (const f of report.files) {
    const path = isAbsolute(f) ? f : join(reportDir, f);
    const rel = relative(reportDir, path).replace(/\//g, '-');
    files.push({ path, name: safeName(`report-${rel}`), kind: f.endsWith('.png') ? 'figure' : 'report' });
  }
  const camDir = join(job.runDir, 'cams');
  for (const f of await readdir(camDir).catch(() => [] as string[]))
    files.push({ path: join(camDir, f), name: safeName(`cam-${f}`), kind: 'cam' });
  const confusion = join(job.runDir, 'confusion.json');
  await writeFile(
    confusion,
    JSON.stringify({ classes: result.dataset.classes, matrix: result.summary?.confusion ?? [] }, null, 2),
  );
  files.push({ path: confusion, name: 'confusion.json', kind: 'confusion' });
  const resultFile = join(job.runDir, 'result.json');
  await writeFile(resultFile, JSON.stringify(result, null, 2));
  files.push({ path: resultFile, name: 'result.json', kind: 'report' });
  // The final model (backbone + head): what `weights: run:<id>` loads on any trainer.
  const modelTar = join(outbox, 'model.tar');
  await writeFile(modelTar, await packDir(join(job.runDir, 'model')));
  files.push({ path: modelTar, name: 'model.tar', kind: 'model' });
  return { result, files };
}

export function childMain() {
  const control = { abort: new AbortController(), stop: false };
  // Terminal signals go to the trainer; it decides (finish the epoch, or abort) and tells us.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  // The trainer died (SIGKILL): nobody holds the lease any more, stop at once.
  process.on('disconnect', () => process.exit(3));
  process.on('message', (msg: ToChild) => {
    if (msg.type === 'abort') control.abort.abort();
    else if (msg.type === 'stopAfterEpoch') control.stop = true;
    else if (msg.type === 'start') {
      run(msg.job, control).then(
        async ({ result, files }) => {
          await send({ type: 'done', result, files });
          process.exit(0);
        },
        async (e: Error) => {
          const stopped = e instanceof RunStoppedError;
          const trap = !stopped && isWasmTrap(e);
          const retryable =
            trap ||
            (!stopped &&
              /out of memory|could not allocate|ENOMEM|Array buffer allocation|ENOSPC|no space left/i.test(
                e.message,
              ));
          const message = e.message || String(e);
          await send({
            type: 'error',
            message: trap ? `wasm trap (${message}); the process is discarded and the run retried` : message,
            stopped,
            retryable,
          });
          process.exit(stopped ? 0 : 1);
        },
      );
    }
  });
}
