// `headbench compare`: trains a plan's runs in worker threads and writes the report.
import { mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  HeadbenchInputError,
  openDataset,
  packagedWeightsDir,
  type RunResult,
  runConfigHash,
  writeReport,
} from '@headbench/core';
import { readEnv } from '@headbench/spec';
import type { ComparePlan } from './compare-plan.js';
import { Progress } from './progress.js';
import type { ThreadJob, ThreadMessage } from './run-thread.js';

/**
 * Run the plan: finished runs (result.json with the same config) are kept, interrupted ones resume from
 * their checkpoint. Runs train in worker threads, `parallel` at a time; each thread has its own wasm
 * instance, so two runs use two cores. A run whose weights are `run:<id>` of this plan waits for it.
 */
export async function runCompare(plan: ComparePlan): Promise<RunResult[]> {
  await mkdir(plan.out, { recursive: true });
  // Open (and generate) each dataset once up front: bad input fails before any training, and
  // parallel runs never race to generate the same files.
  for (const uri of new Set(plan.runs.map((r) => r.config.dataset))) {
    const classes = plan.runs.find((r) => r.config.dataset === uri)?.config.classes;
    await openDataset(uri, { cacheDir: join(plan.home, 'datasets'), classes });
  }
  // Packaged weights too: a missing package fails now, and threads never race to write its cache folder.
  for (const ref of new Set(plan.runs.map((r) => r.config.weights).filter((w) => w.startsWith('npm:'))))
    await packagedWeightsDir(ref, plan.home);
  const progress = new Progress(plan.runs.length, plan.quiet);
  const lanesCount = Math.max(1, Math.min(plan.parallel, plan.runs.length));
  const threadsPerRun = Math.max(1, Math.floor(availableParallelism() / lanesCount));
  const results = new Map<string, RunResult>();
  const finished = new Map<string, Promise<void>>();
  const pending = [...plan.runs.entries()];
  let inputError: HeadbenchInputError | undefined;

  const runOne = async (index: number, run: ComparePlan['runs'][number]): Promise<void> => {
    const runDir = join(plan.out, 'runs', run.id);
    const done = await readFile(join(runDir, 'result.json'), 'utf8')
      .then((s) => JSON.parse(s) as RunResult)
      .catch(() => undefined);
    if (done?.status === 'succeeded' && runConfigHash(done.config) === run.hash) {
      progress.note(`[${index + 1}/${plan.runs.length}] ${run.id}: already done, kept`);
      results.set(run.id, done);
      return;
    }
    const dependency = run.config.weights.startsWith('run:')
      ? finished.get(run.config.weights.slice(4))
      : undefined;
    await dependency;
    progress.startRun(index, run.id, run.config.epochs);
    const job: ThreadJob = {
      config: run.config,
      runId: run.id,
      runDir,
      outDir: plan.out,
      home: plan.home,
      backend: plan.backend,
      featureCache: plan.featureCache,
      runsDir: join(plan.out, 'runs'),
    };
    const outcome = await new Promise<ThreadMessage>((resolveRun) => {
      const worker = new Worker(new URL('../bin/run-thread.js', import.meta.url), {
        workerData: job,
        // Share the cores between the runs in flight rather than giving each run's wasm pool all of them.
        env: {
          ...process.env,
          HEADBENCH_WASM_THREADS: String(readEnv(process.env).HEADBENCH_WASM_THREADS ?? threadsPerRun),
        },
      });
      let last: ThreadMessage | undefined;
      worker.on('message', (m: ThreadMessage) => {
        if (m.type === 'batch') progress.batch(run.id, m.metrics);
        else if (m.type === 'epoch') progress.epoch(run.id, m.metrics);
        else if (m.type === 'log') progress.log(run.id, m.message);
        else {
          // The run is over: don't wait for the thread to drain (a backend's helper threads can keep it alive).
          last = m;
          void worker.terminate();
        }
      });
      worker.on('error', (err) => {
        last ??= { type: 'error', message: err.message, input: false };
      });
      worker.on('exit', (code) =>
        resolveRun(
          last ?? { type: 'error', message: `training thread exited with code ${code}`, input: false },
        ),
      );
    });
    if (outcome.type === 'done') {
      progress.endRun(outcome.result);
      results.set(run.id, outcome.result);
      return;
    }
    if (outcome.type === 'error' && outcome.input) inputError ??= new HeadbenchInputError(outcome.message);
    const message = outcome.type === 'error' ? outcome.message : 'unknown failure';
    progress.failRun(run.id, message);
    results.set(run.id, {
      id: run.id,
      config: run.config,
      backend: 'unknown',
      dataset: { name: '', uri: run.config.dataset, contentHash: '', classes: [], train: 0, test: 0 },
      params: { trainable: 0, frozen: 0, total: 0, backbone: 0, head: 0 },
      epochs: [],
      status: 'failed',
      error: message,
      timings: { started: new Date().toISOString(), seconds: 0 },
    });
  };

  // Each run's completion is a promise, so a transfer run (weights run:<id>) can wait for its source.
  const release = new Map<string, () => void>();
  for (const run of plan.runs) finished.set(run.id, new Promise<void>((r) => release.set(run.id, r)));
  // A simple pool: `parallel` lanes take the next pending run.
  const lanes = Array.from({ length: lanesCount }, async () => {
    for (let next = pending.shift(); next && !inputError; next = pending.shift()) {
      const [index, run] = next;
      try {
        await runOne(index, run);
      } finally {
        release.get(run.id)!();
      }
    }
  });
  await Promise.all(lanes);
  if (inputError) throw inputError;
  const ordered = plan.runs.map((r) => results.get(r.id)!).filter(Boolean);
  const { files } = await writeReport(ordered, plan.out);
  progress.note(
    `wrote ${files.length} files to ${plan.out} (report.md, results.json, metrics.csv, figures/)`,
  );
  return ordered;
}
