// The trainer's progress watchdog (issue #11): a training child that stops making progress (on purpose here,
// through the test-only HEADBENCH_TEST_HANG_AT hook: it blocks for good at the first batch of epoch 2, as a
// child spinning in a corrupt allocator would) is killed, its run handed back as retryable with an event
// that says why, and the next attempt resumes from the last checkpoint: every epoch exactly once.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HeadbenchClient } from '@headbench/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isWasmTrap } from '../../apps/trainer/src/worker/child.js';
import { ProgressWatchdog } from '../../apps/trainer/src/worker/watchdog.js';
import {
  type ApiServer,
  client,
  freshDatabase,
  type Proc,
  range,
  startApi,
  startTrainer,
  storedPoints,
  waitFor,
} from './harness.js';

describe('the progress watchdog', () => {
  const limits = { factor: 20, floorS: 120, ceilingS: 1800 };

  it('allows the ceiling before two batches and outside training, k × median batch time (floor, ceiling) in it', () => {
    const w = new ProgressWatchdog(limits, 0);
    expect(w.limitS()).toBe(1800);
    expect(w.check(1_799_000)).toBeUndefined();
    expect(w.check(1_801_000)).toBe('no progress for 1801 s in preparing; child killed');
    for (let i = 1; i <= 5; i++) w.batch(1, i * 10_000); // 10 s a batch: 200 s
    let t = 50_000;
    expect(w.medianBatchS()).toBe(10);
    expect(w.limitS()).toBe(200);
    expect(w.check(t + 199_000)).toBeUndefined();
    expect(w.check(t + 201_000)).toBe('no progress for 201 s in epoch 1; child killed');
    w.enter('validation after epoch 1', t);
    expect(w.limitS()).toBe(1800);
    t += 60_000;
    w.epochDone(1, t);
    expect(w.phase).toBe('epoch 2');
    w.batch(2, t + 10_000);
    // The gap across validation is no batch time; the median stays 10 s.
    expect(w.medianBatchS()).toBe(10);
    const fast = new ProgressWatchdog(limits, 0);
    for (let i = 1; i <= 5; i++) fast.batch(1, i * 50);
    expect(fast.limitS()).toBe(120); // 20 × 0.05 s is under the floor
    const slow = new ProgressWatchdog(limits, 0);
    for (let i = 1; i <= 5; i++) slow.batch(1, i * 600_000);
    expect(slow.limitS()).toBe(1800); // 20 × 600 s is over the ceiling
  });

  it('does not count log lines during training as progress', () => {
    const w = new ProgressWatchdog({ factor: 2, floorS: 1, ceilingS: 100 }, 0);
    for (let i = 1; i <= 3; i++) w.batch(1, i * 1000);
    w.heard(4000);
    expect(w.check(5500)).toBe('no progress for 3 s in epoch 1; child killed');
  });
});

describe('a wasm trap in a training child', () => {
  it('is told apart from other errors (the run is retried in a fresh process)', () => {
    // A real trap: an out-of-bounds load in a tiny module with one page of memory.
    const WA = (
      globalThis as unknown as {
        WebAssembly: {
          Module: new (b: Uint8Array) => object;
          Instance: new (m: object) => { exports: { f(): number } };
        };
      }
    ).WebAssembly;
    const bytes = Uint8Array.from([
      0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 127, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 5, 1, 1, 102, 0, 0,
      10, 13, 1, 11, 0, 65, 128, 128, 128, 128, 4, 40, 2, 0, 11,
    ]);
    let trap: unknown;
    try {
      new WA.Instance(new WA.Module(bytes)).exports.f();
    } catch (e) {
      trap = e;
    }
    expect(String(trap)).toMatch(/memory access out of bounds/);
    expect(isWasmTrap(trap)).toBe(true);
    expect(
      isWasmTrap(new Error('conv pool check: ConvPool.reluGrad (relu_grad) changed 8 byte(s) in …')),
    ).toBe(true);
    expect(isWasmTrap(new Error("dataset 'x' not found"))).toBe(false);
    expect(isWasmTrap(new Error('connect ENETUNREACH: network is unreachable'))).toBe(false);
  });
});

describe('a hung training child', () => {
  let tmp: string;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let api: ApiServer;
  let admin: HeadbenchClient;
  let trainer: Proc;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'headbench-watchdog-'));
    db = await freshDatabase();
    api = await startApi({ databaseUrl: db.url, home: join(tmp, 'api'), leaseSeconds: 20 });
    admin = client(api.url, api.adminToken);
    const token = (await admin.tokens.create.mutate({ name: 'wd', role: 'trainer', user: 'wd' })).token;
    trainer = startTrainer({
      url: api.url,
      token,
      name: 'wd',
      workDir: join(tmp, 'wd'),
      home: join(tmp, 'wd-home'),
      env: {
        NODE_ENV: 'test',
        HEADBENCH_TEST_HANG_AT: 'epoch:2',
        // Batches take tens of ms here: the floor decides. Above any pause a loaded machine makes.
        HEADBENCH_WATCHDOG_FLOOR_S: '5',
        HEADBENCH_WATCHDOG_CEILING_S: '240',
      },
    });
    await waitFor(() => trainer.out.some((l) => /registered as/.test(l)), 90_000, 'trainer registered', 200);
  });

  afterAll(async () => {
    await trainer?.stop('SIGKILL');
    await api?.proc.stop('SIGTERM', 15_000);
    await db?.drop().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  });

  it('is killed, its run handed back with the reason, and the run finishes with every epoch once', async () => {
    const epochs = 3;
    const sweep = await admin.sweeps.create.mutate({
      name: 'hang',
      datasets: ['generated:flowers3?perClass=24&size=32'],
      backbones: ['smallcnn'],
      heads: ['gap'],
      optimizers: ['adam'],
      seeds: [0],
      epochs,
      batchSize: 8,
      size: 32,
      lr: 0.001,
      trainable: 'all',
      camSamples: 0,
      shifts: [0],
    });
    const id = sweep.runIds[0];
    const r = await waitFor(
      async () => {
        const run = await admin.runs.get.query({ id });
        if (run.status === 'failed' || run.status === 'canceled')
          throw new Error(`run ended ${run.status}: ${run.error}`);
        return run.status === 'succeeded' ? run : undefined;
      },
      240_000,
      'the run succeeded',
      300,
    );
    const failed = r.events.filter((e) => e.type === 'failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].attempt).toBe(1);
    expect(String(failed[0].data?.reason)).toMatch(/^no progress for \d+ s in epoch 2; child killed$/);
    expect(failed[0].data?.requeued).toBe(true);
    expect(r.attempt).toBe(2);
    expect(r.events.find((e) => e.type === 'resumed')?.data?.fromEpoch).toBe(1);
    expect(trainer.text()).toMatch(/no progress for \d+ s in epoch 2; child killed/);
    const pts = await storedPoints(api.databaseUrl, id);
    for (const name of ['loss', 'val_loss', 'val_accuracy'])
      expect(pts[name].map((p) => p.step)).toEqual(range(1, epochs));
    const steps = pts['batch/loss'].map((p) => p.step);
    expect(steps).toEqual(range(1, steps.length));
    expect(steps.length % epochs).toBe(0);
  });
});
