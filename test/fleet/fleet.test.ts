// The trainer fleet end to end: a real API process on a fresh Postgres database, two real
// `headbench-trainer` processes (one slot each), tiny generated datasets. Faults are real too: SIGKILL,
// an API that goes away and comes back, a cancel, a dataset that does not exist.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HeadbenchClient, uploadDataset } from '@headbench/client';
import { openDataset } from '@headbench/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDir } from '../../apps/trainer/src/worker/tar.js';
import {
  type ApiServer,
  client,
  freshDatabase,
  type Proc,
  ROOT,
  range,
  sleep,
  startApi,
  startTrainer,
  storedPoints,
  waitFor,
} from './harness.js';

// Long enough to outlive an API restart on a loaded 2-core machine, short enough to wait out after SIGKILL.
const LEASE_SECONDS = 20;
const TINY = 'generated:flowers3?perClass=12&size=32';
// ~8 batches per epoch: epochs last long enough to kill or cancel in the middle of a run.
const SMALL = 'generated:flowers3?perClass=24&size=32';

const WITHOUT_NSFWJS = join(ROOT, 'test', 'fleet', 'without-nsfwjs.cjs');

const spec = (name: string, over: Record<string, unknown> = {}) => ({
  name,
  datasets: [TINY],
  backbones: ['smallcnn' as const],
  heads: ['gap' as const],
  optimizers: ['adam' as const],
  seeds: [0],
  epochs: 2,
  batchSize: 8,
  size: 32,
  lr: 0.001,
  trainable: 'all' as const,
  camSamples: 2,
  shifts: [0, 0.125],
  ...over,
});

describe('trainer fleet', () => {
  let tmp: string;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let api: ApiServer;
  let admin: HeadbenchClient;
  let trainerToken: string;
  const trainers = new Map<string, Proc>();

  const launch = (name: string) => {
    const p = startTrainer({
      url: api.url,
      // A trainer token only: leases carry what runs read (models of `weights: run:<id>`, uploaded datasets).
      token: trainerToken,
      name,
      workDir: join(tmp, name),
      // One dataset/feature home per trainer, like two machines.
      home: join(tmp, `${name}-home`),
      // Machines without the nsfwjs package: packaged weights reach them through the API.
      env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${WITHOUT_NSFWJS}`.trim() },
    });
    trainers.set(name, p);
    return p;
  };
  const run = (id: string) => admin.runs.get.query({ id });
  const waitRun = (id: string, status: string, ms = 120_000) =>
    waitFor(
      async () => {
        const r = await run(id);
        if (r.status === status) return r;
        if (['succeeded', 'failed', 'canceled'].includes(r.status) && r.status !== status)
          throw new Error(`run ${id} ended ${r.status}: ${r.error}`);
        return undefined;
      },
      ms,
      `run ${id} ${status}`,
      300,
    );
  const nameOf = async (trainerId: string | null) =>
    (await admin.trainers.list.query()).find((t) => t.id === trainerId)?.name;

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'headbench-fleet-'));
    db = await freshDatabase();
    api = await startApi({ databaseUrl: db.url, home: join(tmp, 'api'), leaseSeconds: LEASE_SECONDS });
    admin = client(api.url, api.adminToken);
    trainerToken = (await admin.tokens.create.mutate({ name: 'fleet', role: 'trainer', user: 'fleet' }))
      .token;
    launch('t1');
    launch('t2');
    await waitFor(
      async () => (await admin.trainers.list.query()).length === 2,
      90_000,
      'two registered trainers',
      500,
    );
  });

  afterAll(async () => {
    await Promise.all([...trainers.values()].map((t) => t.stop('SIGKILL')));
    await api?.proc.stop('SIGTERM', 15_000);
    await db?.drop().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  });

  it('runs a sweep to completion on both trainers, with metrics, artifacts and a transfer run', async () => {
    const sweep = await admin.sweeps.create.mutate(spec('heads', { heads: ['fc', 'gap', 'gmp'] }));
    const done = await Promise.all(sweep.runIds.map((id) => waitRun(id, 'succeeded', 180_000)));
    expect(new Set(done.map((r) => r.trainerId)).size).toBe(2);
    for (const r of done) {
      const pts = await storedPoints(api.databaseUrl, r.id);
      for (const name of ['loss', 'accuracy', 'val_loss', 'val_accuracy'])
        expect(pts[name].map((p) => p.step)).toEqual([1, 2]);
      const steps = pts['batch/loss'].map((p) => p.step);
      expect(steps).toEqual(range(1, steps.length));
      expect(r.backend).toBe('wasm');
      expect(r.params?.total).toBeGreaterThan(0);
      expect(r.summary?.test_accuracy).toBeTypeOf('number');
      const names = r.artifacts.map((a) => a.name);
      expect(names).toEqual(
        expect.arrayContaining(['checkpoint.tar', 'model.tar', 'result.json', 'confusion.json']),
      );
      expect(r.artifacts.find((a) => a.name === 'checkpoint.tar')?.epoch).toBe(2);
      expect(r.artifacts.find((a) => a.name === 'model.tar')?.kind).toBe('model');
      expect(r.artifacts.some((a) => a.kind === 'figure')).toBe(true);
      const head = (r.config as { head: string }).head;
      expect(r.artifacts.filter((a) => a.kind === 'cam').length).toBe(head === 'fc' ? 0 : 2);
    }
    // Transfer: the backbone comes from the first run's final model artifact, fetched by whichever trainer.
    const transfer = await admin.sweeps.create.mutate(
      spec('transfer', { weights: [`run:${sweep.runIds[0]}`], epochs: 1 }),
    );
    const t = await waitRun(transfer.runIds[0], 'succeeded', 120_000);
    expect(t.summary?.test_accuracy).toBeTypeOf('number');
  });

  it('trains on packaged npm weights that trainers without the package get from the API', async () => {
    // The preload really hides the package: reading it the CLI's way fails on such a machine.
    const probe = spawnSync(
      process.execPath,
      [
        '--require',
        WITHOUT_NSFWJS,
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { packagedWeightsDir } from '@headbench/weights';
         await packagedWeightsDir('npm:nsfwjs/mobilenet_v2', ${JSON.stringify(join(tmp, 'probe'))});`,
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(probe.stderr).toContain("the npm package 'nsfwjs' is not installed");

    const sweep = await admin.sweeps.create.mutate(
      spec('pretrained', {
        backbones: ['mobilenetv2'],
        weights: ['npm:nsfwjs/mobilenet_v2'],
        trainable: 'frozen',
        epochs: 1,
        camSamples: 0,
      }),
    );
    const r = await waitRun(sweep.runIds[0], 'succeeded', 180_000);
    const res = await fetch(
      `${api.url}/weights/${encodeURIComponent('npm:nsfwjs/mobilenet_v2')}/weights.bin`,
      {
        headers: { authorization: `Bearer ${trainerToken}` },
      },
    );
    expect(res.status).toBe(200);
    const sha256 = createHash('sha256')
      .update(Buffer.from(await res.arrayBuffer()))
      .digest('hex');
    const provenance = (r.summary as { provenance?: { weights?: Record<string, unknown> } }).provenance;
    expect(provenance?.weights).toMatchObject({
      source: 'npm:nsfwjs/mobilenet_v2',
      package: { name: 'nsfwjs', version: '4.4.0', model: 'mobilenet_v2', sha256 },
    });
    expect(provenance?.weights?.contentHash).toMatch(/^[0-9a-f]{64}$/);
    // What the trainer fetched is cached under its home, per package version.
    const trainer = await nameOf(r.trainerId);
    expect(
      existsSync(
        join(tmp, `${trainer}-home`, 'weights', 'npm', 'nsfwjs@4.4.0', 'mobilenet_v2', 'weights.bin'),
      ),
    ).toBe(true);
    // A reference that is not npm:<package>/<model> is refused by name.
    const bad = await fetch(`${api.url}/weights/${encodeURIComponent('npm:nsfwjs/..')}/weights.bin`, {
      headers: { authorization: `Bearer ${trainerToken}` },
    });
    expect(bad.status).toBe(400);
  });

  it('trains on an uploaded dataset, fetched through the API with the trainer token and checked by hash', async () => {
    const gen = await openDataset('generated:flowers3?perClass=12&size=32&seed=7', {
      cacheDir: join(tmp, 'gen'),
    });
    const dir = join(tmp, 'gen', 'flowers3-seed7-size32-n12');
    const { contentHash } = await openDataset(dir);
    expect(contentHash).toBe(gen.contentHash);
    const up = await uploadDataset({
      url: api.url,
      token: api.adminToken,
      name: 'uploaded-flowers',
      format: 'tar',
      body: await packDir(dir),
      contentHash,
    });
    expect(up.archive.size).toBeGreaterThan(0);
    const sweep = await admin.sweeps.create.mutate(
      spec('uploaded', { datasets: ['dataset:uploaded-flowers'], epochs: 1 }),
    );
    const r = await waitRun(sweep.runIds[0], 'succeeded', 120_000);
    const result = r.summary as { test_accuracy: number };
    expect(result.test_accuracy).toBeTypeOf('number');
    const who = (await nameOf(r.trainerId))!;
    expect(trainers.get(who)?.text()).toMatch(/downloading uploaded-flowers\.tar/);
  });

  it('resumes a SIGKILLed trainer’s run on the other trainer with every epoch exactly once', async () => {
    const epochs = 6;
    const sweep = await admin.sweeps.create.mutate(spec('sigkill', { datasets: [SMALL], epochs }));
    const id = sweep.runIds[0];
    const ckpt = await waitFor(
      async () => {
        const r = await run(id);
        return r.status === 'running' && (r.checkpointEpoch ?? 0) >= 2 && (r.checkpointEpoch ?? 0) < epochs
          ? r
          : undefined;
      },
      120_000,
      'a mid-run checkpoint',
      150,
    );
    const victim = (await nameOf(ckpt.trainerId))!;
    const killedAt = Date.now();
    await trainers.get(victim)!.stop('SIGKILL');
    const r = await waitRun(id, 'succeeded', 180_000);
    expect(await nameOf(r.trainerId)).not.toBe(victim);
    const types = r.events.map((e) => e.type);
    expect(types).toContain('lease_expired');
    const resumed = r.events.find((e) => e.type === 'resumed');
    expect(resumed?.data?.fromEpoch).toBeGreaterThanOrEqual(2);
    const pts = await storedPoints(api.databaseUrl, id);
    for (const name of ['loss', 'val_loss', 'val_accuracy'])
      expect(pts[name].map((p) => p.step)).toEqual(range(1, epochs));
    // Epochs up to the checkpoint were stored before the kill and never recomputed.
    expect(pts.val_accuracy[0].time).toBeLessThan(killedAt);
    const steps = pts['batch/loss'].map((p) => p.step);
    expect(steps).toEqual(range(1, steps.length));
    expect(steps.length % epochs).toBe(0);
    launch(victim); // back to two trainers
    await waitFor(() => trainers.get(victim)!.out.some((l) => /registered as/.test(l)), 60_000, 'relaunch');
  });

  it('keeps training while the API is down, buffers metrics and flushes them after the restart', async () => {
    const epochs = 6;
    const sweep = await admin.sweeps.create.mutate(spec('api-restart', { datasets: [SMALL], epochs }));
    const id = sweep.runIds[0];
    await waitFor(
      async () => ((await storedPoints(api.databaseUrl, id)).val_loss?.length ?? 0) >= 1,
      120_000,
      'first epoch stored',
      200,
    );
    const holder = (await nameOf((await run(id)).trainerId))!;
    const downAt = Date.now();
    await api.proc.stop('SIGKILL'); // a crash, not a polite shutdown
    await sleep(4000);
    await api.restart();
    const upAt = Date.now();
    const r = await waitRun(id, 'succeeded', 180_000);
    const log = trainers.get(holder)!.text();
    expect(log).toMatch(new RegExp(`run ${id}: API unreachable .*buffering`));
    expect(log).toMatch(new RegExp(`run ${id}: API reachable again, flushing`));
    const pts = await storedPoints(api.databaseUrl, id);
    for (const name of ['loss', 'val_loss', 'val_accuracy'])
      expect(pts[name].map((p) => p.step)).toEqual(range(1, epochs));
    const steps = pts['batch/loss'].map((p) => p.step);
    expect(steps).toEqual(range(1, steps.length));
    // Points measured while the API was down were kept by the trainer and stored later, with their own time.
    expect(pts['batch/loss'].some((p) => p.time > downAt && p.time < upAt)).toBe(true);
    expect(r.attempt).toBeGreaterThanOrEqual(1);
  });

  it('cancels a running run within seconds and frees the slot', async () => {
    const sweep = await admin.sweeps.create.mutate(spec('cancel', { datasets: [SMALL], epochs: 50 }));
    const id = sweep.runIds[0];
    await waitFor(
      async () => ((await storedPoints(api.databaseUrl, id))['batch/loss']?.length ?? 0) >= 2,
      120_000,
      'training started',
      200,
    );
    const holder = trainers.get((await nameOf((await run(id)).trainerId))!)!;
    const t0 = Date.now();
    await admin.runs.cancel.mutate({ id });
    await holder.waitForLine(new RegExp(`run ${id}: released`), 15_000);
    expect(Date.now() - t0).toBeLessThan(15_000);
    const after = (await storedPoints(api.databaseUrl, id))['batch/loss'].length;
    await sleep(2000);
    expect((await storedPoints(api.databaseUrl, id))['batch/loss'].length).toBe(after);
    expect((await run(id)).status).toBe('canceled');
  });

  it('records a broken dataset as a failure and keeps taking runs', async () => {
    const sweep = await admin.sweeps.create.mutate(
      spec('broken', { datasets: [join(tmp, 'no-such-dataset'), TINY], epochs: 1 }),
    );
    const [bad, good] = sweep.runIds;
    const failed = await waitRun(bad, 'failed', 60_000);
    expect(failed.error).toMatch(/no-such-dataset/);
    expect(failed.attempt).toBe(1); // bad input is not retried
    await waitRun(good, 'succeeded', 120_000);
    for (const t of trainers.values()) expect(t.child.exitCode).toBeNull();
  });
});
