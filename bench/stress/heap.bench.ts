/**
 * Heap stress of the trainer child's path (issue #11): many short runs, each through real training children
 * as the trainer forks them — train, checkpoint tar every epoch, stop, resume in a new process, report,
 * model — with tfjs's wasm heap forced to grow at drawn moments (before tensors, inside conv pool calls),
 * compared bit for bit with the same run without forced growth. Prints each run and the failure rate
 * (hangs, errors, silent differences) and the runs until the first failure.
 *   npx tsx bench/stress/heap.bench.ts [--runs 10] [--epochs 3] [--threads 1] [--check] [--until-failure]
 *   --threads 2   the children on the threaded build (what trainer slots ran before the fix)
 *   --check       the conv pool's bounds-checked mode (HEADBENCH_WASM_CHECK=1) in every child
 *   --stall 90    seconds without a message from a child before it counts as hung (and is killed)
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type EpochMetrics, type RunConfig, runConfigHash, validateRunConfig } from '@headbench/core';
import type { ChildJob, FromChild } from '../../apps/trainer/src/worker/protocol.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const flag = (name: string) => process.argv.includes(`--${name}`);
const runs = arg('runs', 10);
const epochs = arg('epochs', 3);
const threads = arg('threads', 1);
const stallS = arg('stall', 90);
const check = flag('check');
const untilFailure = flag('until-failure');
const CHILD_BIN = fileURLToPath(new URL('../../apps/trainer/bin/headbench-trainer.js', import.meta.url));

interface ChildRun {
  epochs: EpochMetrics[];
  logs: string[];
  outcome?: FromChild;
  hung?: string;
  /** The end of the child's stderr (what a child that died without a word printed). */
  stderr: string;
}

function runChild(job: ChildJob, env: Record<string, string>, stopAfterFirst = false): Promise<ChildRun> {
  return new Promise((resolve) => {
    const child: ChildProcess = fork(CHILD_BIN, ['--child'], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      serialization: 'advanced',
      env: {
        ...process.env,
        NODE_ENV: 'test',
        HEADBENCH_WASM_THREADS: String(threads),
        HEADBENCH_WASM_CHECK: check ? '1' : '0',
        ...env,
      },
    });
    const out: ChildRun = { epochs: [], logs: [], stderr: '' };
    let phase = 'preparing';
    let timer: NodeJS.Timeout;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        out.hung = `no message for ${stallS} s in ${phase}`;
        child.kill('SIGKILL');
      }, stallS * 1000);
    };
    arm();
    child.stderr?.on('data', (d: Buffer) => {
      out.stderr = (out.stderr + d.toString()).slice(-2000);
    });
    child.on('message', (m: FromChild) => {
      arm();
      if (m.type === 'batch') phase = `epoch ${m.m.epoch}`;
      else if (m.type === 'phase') phase = m.phase;
      else if (m.type === 'epoch') {
        out.epochs.push(m.m);
      } else if (m.type === 'log') out.logs.push(m.message);
      else out.outcome = m;
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
    child.send({ type: 'start', job });
    if (stopAfterFirst) child.send({ type: 'stopAfterEpoch' });
  });
}

const figures = (e: EpochMetrics[]) =>
  JSON.stringify(e.map((m) => [m.epoch, m.loss, m.accuracy, m.val_loss, m.val_accuracy]));
/** The final checkpoint's tensors (a child leaves its last checkpoint in `<runDir>/checkpoint`). */
const tensors = (runDir: string) => readFile(join(runDir, 'checkpoint', 'tensors.bin'));

function problem(r: ChildRun, stopped = false): string | undefined {
  if (r.hung) return `hang (${r.hung})`;
  if (!r.outcome) {
    const last = r.stderr.trim().split('\n').slice(-3).join(' | ');
    return `child died without a word${last ? `: ${last}` : ''}`;
  }
  if (r.outcome.type === 'error' && !(stopped && r.outcome.stopped)) return `error: ${r.outcome.message}`;
  return undefined;
}

const heads = ['gap', 'fc', 'gmp'] as const;
const optimizers = ['adam', 'rmsprop', 'sgd'] as const;
const tmp = await mkdtemp(join(tmpdir(), 'headbench-heap-bench-'));
console.log(
  `heap stress: ${runs} runs of ${epochs} epochs, children on the ${threads > 1 ? `threaded build (${threads} threads)` : 'one-thread build'}` +
    `${check ? ', bounds-checked conv pool' : ''}; heap growth forced at drawn allocations`,
);
let failures = 0;
let firstFailure: number | undefined;
const kinds: Record<string, number> = {};
const started = Date.now();
for (let i = 0; i < runs; i++) {
  const config = validateRunConfig({
    dataset: 'generated:flowers3?perClass=12&size=32',
    backbone: 'smallcnn',
    weights: 'none',
    trainable: 'all',
    head: heads[i % heads.length],
    optimizer: optimizers[Math.floor(i / heads.length) % optimizers.length],
    lr: 0.002,
    decay: 0,
    batchSize: 8,
    epochs,
    seed: i,
    size: 32,
    camSamples: 1,
    shifts: [0],
  } as RunConfig);
  const job = (name: string): ChildJob => ({
    runId: name,
    config,
    apiConfig: config,
    canonicalHash: runConfigHash(config),
    runDir: join(tmp, `${i}-${name}`),
    home: join(tmp, 'home'),
    backend: 'wasm',
    attempt: 1,
  });
  const every = 10 + ((i * 37) % 50);
  const t0 = Date.now();
  const plain = await runChild(job('plain'), {});
  const pressed = job('pressed');
  const first = await runChild(pressed, { HEADBENCH_TEST_HEAP_GROWTH: `${every}:${i}` }, true);
  const second = first.hung
    ? first
    : await runChild(pressed, { HEADBENCH_TEST_HEAP_GROWTH: `${every}:${i + 1000}` });
  let why = problem(plain) ?? problem(first, true) ?? problem(second);
  if (!why) {
    const same =
      figures(plain.epochs) === figures([...first.epochs, ...second.epochs]) &&
      (await tensors(join(tmp, `${i}-plain`))).equals(await tensors(pressed.runDir));
    if (!same) why = 'silent difference: the run with forced growth differs from the run without';
  }
  const growth = second.logs.find((l) => l.startsWith('heap growth forced')) ?? '';
  const label = `${config.head}/${config.optimizer} seed ${i}, growth every ~${every}`;
  console.log(
    `run ${i + 1}: ${label}: ${why ?? 'ok'} (${((Date.now() - t0) / 1000).toFixed(1)} s${growth ? `; ${growth}` : ''})`,
  );
  if (why) {
    failures++;
    firstFailure ??= i + 1;
    const kind = why.split(/[ :(]/)[0];
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    if (untilFailure) break;
  }
}
await rm(tmp, { recursive: true, force: true });
const done = untilFailure && firstFailure ? firstFailure : runs;
console.log(
  `\n${failures} of ${done} runs failed (${
    Object.entries(kinds)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none'
  }); runs until the first failure: ${firstFailure ?? `none in ${done}`}; ` +
    `${((Date.now() - started) / 1000).toFixed(0)} s`,
);
