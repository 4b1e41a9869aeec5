// Issue #11's guard: the trainer child's whole path (train, checkpoint tar every epoch, stop, resume in a
// new process, report, model) on tfjs's one-thread wasm build, with its heap made to grow between kernels
// and inside conv pool calls, gives bit for bit what the same path gives without forced growth. A stray
// write through a stale view or address after growth changes numbers here. (Not against the cpu backend:
// wasm and cpu sum in different orders, so their last bits differ, and cpu takes minutes per epoch of this
// small CNN; bench/stress/heap.bench.ts --cpu compares them.)
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EpochMetrics, RunConfig } from '@headbench/core';
import { runConfigHash, validateRunConfig } from '@headbench/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildJob, FromChild } from '../../apps/trainer/src/worker/protocol.js';
import { ROOT } from './harness.js';

const CHILD_BIN = join(ROOT, 'apps', 'trainer', 'bin', 'headbench-trainer.js');
const EPOCHS = 4;

const config = validateRunConfig({
  dataset: 'generated:flowers3?perClass=12&size=32',
  backbone: 'smallcnn',
  weights: 'none',
  trainable: 'all',
  head: 'gap',
  optimizer: 'adam',
  lr: 0.002,
  decay: 0,
  batchSize: 8,
  epochs: EPOCHS,
  seed: 3,
  size: 32,
  camSamples: 1,
  shifts: [0],
} as RunConfig);

interface ChildRun {
  epochs: EpochMetrics[];
  logs: string[];
  outcome?: FromChild;
}

const live = new Set<ChildProcess>();

/** One training child, as the trainer forks it (one wasm thread), run to its end. */
function runChild(
  job: ChildJob,
  env: Record<string, string>,
  stopAfterFirstEpoch = false,
): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = fork(CHILD_BIN, ['--child'], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
      env: { ...process.env, HEADBENCH_WASM_THREADS: '1', NODE_ENV: 'test', ...env },
    });
    live.add(child);
    const out: ChildRun = { epochs: [], logs: [] };
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('message', (m: FromChild) => {
      if (m.type === 'epoch') {
        out.epochs.push(m.m);
      } else if (m.type === 'log') out.logs.push(m.message);
      else if (m.type === 'done' || m.type === 'error') out.outcome = m;
    });
    child.on('exit', (code) => {
      live.delete(child);
      if (!out.outcome) reject(new Error(`child exited (${code}) without a word:\n${stderr.slice(-3000)}`));
      else resolve(out);
    });
    child.send({ type: 'start', job });
    if (stopAfterFirstEpoch) child.send({ type: 'stopAfterEpoch' });
  });
}

/** The final checkpoint's tensors (the child leaves its last checkpoint in `<runDir>/checkpoint`). */
const tensorsOf = (runDir: string) => readFile(join(runDir, 'checkpoint', 'tensors.bin'));

/** Epoch figures that depend on the numbers only (not on the clock). */
const figures = (epochs: EpochMetrics[]) =>
  epochs.map(({ epoch, loss, accuracy, val_loss, val_accuracy }) => ({
    epoch,
    loss,
    accuracy,
    val_loss,
    val_accuracy,
  }));

describe("the trainer child's path under forced heap growth (one-thread wasm)", () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'headbench-child-heap-'));
  });
  afterAll(async () => {
    for (const c of live) c.kill('SIGKILL');
    await rm(tmp, { recursive: true, force: true });
  });

  const job = (name: string, backend: 'wasm' | 'cpu'): ChildJob => ({
    runId: name,
    config,
    apiConfig: config,
    canonicalHash: runConfigHash(config),
    runDir: join(tmp, name),
    home: join(tmp, 'home'),
    backend,
    attempt: 1,
  });

  it('is bit for bit the run without forced growth, stopped and resumed included', async () => {
    const plain = await runChild(job('plain', 'wasm'), {});
    expect(plain.outcome?.type).toBe('done');
    expect(plain.epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4]);

    // Growth at drawn moments; the first process stops after epoch 1, a second one resumes from its checkpoint.
    const pressed = job('pressed', 'wasm');
    const first = await runChild(pressed, { HEADBENCH_TEST_HEAP_GROWTH: '25:1' }, true);
    expect(first.outcome).toMatchObject({ type: 'error', stopped: true });
    const second = await runChild(pressed, { HEADBENCH_TEST_HEAP_GROWTH: '25:2' });
    expect(second.outcome?.type).toBe('done');
    const growths = [...first.logs, ...second.logs]
      .map((l) => /heap growth forced: (\d+) growths of \d+ \(tensor (\d+), pool (\d+)\)/.exec(l))
      .filter((m) => m !== null)
      .map((m) => m.slice(1).map(Number));
    // The stopped process reports nothing (it never finishes); the resumed one grew the heap at both sites.
    expect(growths).toHaveLength(1);
    const [grew, tensorSite, poolSite] = growths[0];
    expect(grew).toBeGreaterThanOrEqual(4);
    expect(tensorSite).toBeGreaterThan(0);
    expect(poolSite).toBeGreaterThan(0);

    expect(figures([...first.epochs, ...second.epochs])).toEqual(figures(plain.epochs));
    const want = await tensorsOf(join(tmp, 'plain'));
    const got = await tensorsOf(pressed.runDir);
    expect(want.length).toBeGreaterThan(0);
    expect(got.equals(want)).toBe(true);
  });
});
