// Two API processes on one Postgres, artifacts in Postgres large objects (each instance has its own,
// unshared storage folder), behind no load balancer: trainers are given the instances' URLs. A
// dashboard-like socket on B sees every epoch that trainers report to A; a cancel sent to B stops a run
// training through A within 2 s; A is SIGKILLed mid-run and the trainer that knows B carries on through it
// with no hole and no repeated epoch; the trainer that knew only A dies with it, and its run resumes through
// B from the checkpoint it stored through A.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectLive, type HeadbenchClient, type LiveConnection, type LiveUpdate } from '@headbench/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiServer,
  client,
  freePort,
  freshDatabase,
  type Proc,
  range,
  startApi,
  startTrainer,
  storedPoints,
  waitFor,
} from './harness.js';

// Long enough that no lease expires while a trainer moves from A to B (a failover must not need one: it
// heartbeats B within seconds), short enough to wait out for the trainer that dies with A.
const LEASE_SECONDS = 10;
// ~8 batches per epoch: long enough to act in the middle of a run.
const SMALL = 'generated:flowers3?perClass=24&size=32';
const EPOCHS = 4;

const spec = (name: string, over: Record<string, unknown> = {}) => ({
  name,
  datasets: [SMALL],
  backbones: ['smallcnn' as const],
  heads: ['gap' as const],
  optimizers: ['adam' as const],
  seeds: [0],
  epochs: EPOCHS,
  batchSize: 8,
  size: 32,
  lr: 0.001,
  trainable: 'all' as const,
  camSamples: 0,
  ...over,
});

describe('two API instances', () => {
  let tmp: string;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let a: ApiServer;
  let b: ApiServer;
  let adminB: HeadbenchClient;
  let trainerToken: string;
  let live: LiveConnection;
  const updates: LiveUpdate[] = [];
  const trainers: Proc[] = [];
  let t1: Proc;
  let t2: Proc;

  const launch = (name: string, urls: string[]) => {
    const p = startTrainer({
      url: urls.join(','),
      token: trainerToken,
      name,
      workDir: join(tmp, name),
      home: join(tmp, 'trainer-home'),
    });
    trainers.push(p);
    return p;
  };
  const run = (id: string) => adminB.runs.get.query({ id });
  const waitRun = (id: string, status: string, ms = 120_000) =>
    waitFor(
      async () => {
        const r = await run(id);
        if (r.status === status) return r;
        if (['succeeded', 'failed', 'canceled'].includes(r.status))
          throw new Error(`run ${id} ended ${r.status}: ${r.error}`);
        return undefined;
      },
      ms,
      `run ${id} ${status}`,
      200,
    );
  /** Epoch-level val_loss steps that reached the dashboard on B for a run. */
  const liveEpochs = (runId: string) =>
    updates
      .flatMap((u) => u.metrics.filter((m) => m.runId === runId))
      .flatMap((m) => m.points.filter((p) => p.name === 'val_loss').map((p) => p.step))
      .sort((x, y) => x - y);

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'headbench-scaleout-'));
    db = await freshDatabase();
    const instance = (name: string, port?: number) =>
      startApi({
        databaseUrl: db.url,
        home: join(tmp, 'api'),
        leaseSeconds: LEASE_SECONDS,
        port,
        env: { HEADBENCH_STORAGE: 'postgres', HEADBENCH_STORAGE_DIR: join(tmp, `store-${name}`) },
      });
    a = await instance('a'); // first: it creates the admin token both read
    trainerToken = (
      await client(a.url, a.adminToken).tokens.create.mutate({
        name: 'fleet',
        role: 'trainer',
        user: 'fleet',
      })
    ).token;
    // The trainers start (through A) while B does; t1 knows B's address already, t2 knows only A.
    const portB = await freePort();
    t1 = launch('t1', [a.url, `http://127.0.0.1:${portB}`]);
    t2 = launch('t2', [a.url]);
    b = await instance('b', portB);
    adminB = client(b.url, b.adminToken);
    live = connectLive({ url: b.url, token: b.adminToken });
    live.onUpdate((u) => updates.push(u));
  });

  afterAll(async () => {
    live?.close();
    await Promise.all(trainers.map((t) => t.stop('SIGKILL')));
    await Promise.all([a, b].map((x) => x?.proc.stop('SIGTERM', 15_000)));
    await db?.drop().catch(() => {});
    await rm(tmp, { recursive: true, force: true });
  });

  it('fans out, cancels, fails over and resumes across instances', async () => {
    await waitFor(async () => (await adminB.trainers.list.query()).length === 2, 90_000, 'two trainers', 300);

    // A cancel sent to B reaches the trainer that trains through A.
    const doomed = await adminB.sweeps.create.mutate(spec('cancel', { epochs: 50 }));
    const doomedId = doomed.runIds[0];
    await waitFor(
      async () => ((await storedPoints(db.url, doomedId))['batch/loss']?.length ?? 0) >= 1,
      90_000,
      'the doomed run training',
      200,
    );
    const holder = (await run(doomedId)).trainerId;
    const holderProc = holder && (await adminB.trainers.list.query()).find((t) => t.id === holder)?.name;
    const proc = holderProc === 't1' ? t1 : t2;
    await adminB.runs.cancel.mutate({ id: doomedId });
    // Within the 2 s bound the trainer stops the run: by the push that crosses from B to A's socket, or by
    // A refusing its next upload or metric batch, whichever comes first (the push alone: test/api/cluster).
    await proc.waitForLine(new RegExp(`run ${doomedId}: stopping \\(`), 2000);
    await proc.waitForLine(new RegExp(`run ${doomedId}: released`), 15_000);

    // Two runs, one per trainer, both through A; the dashboard on B watches the sweep.
    const sweep = await adminB.sweeps.create.mutate(spec('scaleout', { seeds: [1, 2] }));
    await live.subscribe([`sweep:${sweep.id}`]);
    const held = await waitFor(
      async () => {
        const rs = await Promise.all(sweep.runIds.map(run));
        if (!rs.every((r) => r.status === 'running' && (r.checkpointEpoch ?? 0) >= 1)) return undefined;
        for (const r of rs) {
          const stored = (await storedPoints(db.url, r.id)).val_loss?.length ?? 0;
          // Mid-run: its last epoch still to be measured.
          if (stored >= EPOCHS) throw new Error(`run ${r.id} finished its epochs before A could be killed`);
          // Kill A between epochs: a point A stored but had not yet forwarded when it died would never be
          // live (a dashboard fetches such points with runs.metrics after it reconnects).
          if (liveEpochs(r.id).length !== stored) return undefined;
        }
        return rs;
      },
      120_000,
      'both runs past their first checkpoint, their epochs live on B',
      200,
    );
    const names = new Map((await adminB.trainers.list.query()).map((t) => [t.id, t.name]));
    const onT1 = held.find((r) => names.get(r.trainerId!) === 't1')!;
    const onT2 = held.find((r) => names.get(r.trainerId!) === 't2')!;
    expect(onT1 && onT2).toBeTruthy();

    // A dies mid-run, and t2 (which knew only A) with it.
    const killedAt = Date.now();
    await Promise.all([a.proc.stop('SIGKILL'), t2.stop('SIGKILL')]);
    const checkpoint = (await run(onT2.id)).checkpointEpoch!;
    expect(checkpoint).toBeGreaterThanOrEqual(1);

    // t1 carries on through B without losing its lease.
    await t1.waitForLine(/now \(the previous instance did not answer\)/, 30_000);
    const finished = await waitRun(onT1.id, 'succeeded', 180_000);
    expect(finished.attempt).toBe(1);
    expect(finished.events.map((e) => e.type)).not.toContain('resumed');
    // It was mid-run: epochs measured after A died were stored (through B).
    const t1Points = await storedPoints(db.url, onT1.id);
    expect(t1Points.val_loss.some((p) => p.time > killedAt)).toBe(true);

    // t2's lease expires; B, now the leader, requeues the run; t1 leases it through B and resumes it from
    // the checkpoint t2 stored through A.
    const resumed = await waitRun(onT2.id, 'succeeded', 180_000);
    expect(names.get(resumed.trainerId!)).toBe('t1');
    const resumeEvent = resumed.events.filter((e) => e.type === 'resumed').at(-1);
    expect(resumeEvent?.data?.fromEpoch).toBe(checkpoint);

    for (const r of [finished, resumed]) {
      const pts = await storedPoints(db.url, r.id);
      // Every epoch once, every batch step once: no hole where A died, nothing repeated.
      for (const name of ['loss', 'val_loss', 'val_accuracy'])
        expect(pts[name].map((p) => p.step)).toEqual(range(1, EPOCHS));
      const steps = pts['batch/loss'].map((p) => p.step);
      expect(steps).toEqual(range(1, steps.length));
      // Each epoch reached the dashboard on B exactly once, whichever instance stored it.
      await waitFor(() => liveEpochs(r.id).length >= EPOCHS, 5000, `live epochs of ${r.id}`, 100);
      expect(liveEpochs(r.id)).toEqual(range(1, EPOCHS));
    }
  });
});
