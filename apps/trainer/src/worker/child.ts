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

async function run(job: ChildJob, control: { abort: AbortController; stop: boolean }) {
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
    onBatch: (m) => void send({ type: 'batch', m }),
    onLog: (message) => void send({ type: 'log', message }),
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
          const retryable =
            !stopped &&
            /out of memory|could not allocate|ENOMEM|Array buffer allocation|ENOSPC|no space left/i.test(
              e.message,
            );
          await send({ type: 'error', message: e.message || String(e), stopped, retryable });
          process.exit(stopped ? 0 : 1);
        },
      );
    }
  });
}
