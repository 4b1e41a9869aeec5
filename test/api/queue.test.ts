import {
  connectLive,
  connectTrainerSocket,
  createHeadbenchClient,
  downloadArtifact,
  type HeadbenchClient,
  type LiveUpdate,
  uploadArtifact,
} from '@headbench/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi, trpcRaw, waitFor } from './helpers.js';

const spec = {
  name: 'heads on flowers',
  datasets: ['generated:flowers17?perClass=4'],
  backbones: ['smallcnn' as const],
  heads: ['fc' as const, 'gap' as const],
  optimizers: ['adam' as const],
  seeds: [1, 2],
  epochs: 3,
  batchSize: 8,
  size: 32,
  lr: 0.001,
};

describe('queue, trainer protocol and live updates', () => {
  let api: TestApi;
  let admin: HeadbenchClient;
  let trainerToken: string;
  let trainer: HeadbenchClient;
  let trainerId: string;

  beforeAll(async () => {
    api = await startTestApi({ leaseSeconds: 1.5, liveIntervalMs: 250 });
    admin = createHeadbenchClient({ url: api.url, token: api.token });
    trainerToken = (await admin.tokens.create.mutate({ name: 'gpu-box', role: 'trainer', user: 'fleet' }))
      .token;
    trainer = createHeadbenchClient({ url: api.url, token: trainerToken, batch: false });
    trainerId = (
      await trainer.trainer.register.mutate({
        name: 'box-1',
        host: 'box-1',
        slots: 2,
        capabilities: { backend: 'cpu', gpu: false },
      })
    ).trainerId;
  });
  afterAll(async () => {
    await api?.dispose();
  });

  it('runs a sweep end to end: queued → leased → metrics (stored and pushed) → succeeded', async () => {
    const sweep = await admin.sweeps.create.mutate(spec);
    expect(sweep.runs).toBe(4);
    const queued = await admin.runs.list.query({ sweepId: sweep.id, status: 'queued' });
    expect(queued).toHaveLength(4);
    expect(new Set(queued.map((r) => `${r.config.head}/${r.config.seed}`)).size).toBe(4);

    const live = connectLive({ url: api.url, token: api.token });
    const updates: LiveUpdate[] = [];
    live.onUpdate((u) => updates.push(u));
    await live.subscribe([`sweep:${sweep.id}`]);

    const { runs } = await trainer.trainer.lease.mutate({ trainerId, freeSlots: 2 });
    expect(runs).toHaveLength(2);
    const [a, b] = runs;
    expect(a.attempt).toBe(1);
    expect(a.resume).toBeNull();
    expect(a.config.backbone).toBe('smallcnn');
    expect((await admin.runs.get.query({ id: a.runId })).status).toBe('running');

    for (let epoch = 1; epoch <= 3; epoch++) {
      const r = await trainer.trainer.reportMetrics.mutate({
        runId: a.runId,
        leaseId: a.leaseId,
        points: [
          { name: 'val_accuracy', step: epoch, epoch, value: 0.3 + epoch * 0.1 },
          { name: 'loss', step: epoch, epoch, value: 1 / epoch },
        ],
      });
      expect(r.inserted).toBe(2);
    }
    await trainer.trainer.reportMetrics.mutate({
      runId: b.runId,
      leaseId: b.leaseId,
      points: [{ name: 'val_accuracy', step: 1, epoch: 1, value: 0.5 }],
    });
    await trainer.trainer.complete.mutate({
      runId: a.runId,
      leaseId: a.leaseId,
      backend: 'cpu',
      params: { trainable: 10, frozen: 5, total: 15, backbone: 5, head: 10 },
      summary: { test_accuracy: 0.61, selected_epoch: 3 },
      timings: { seconds: 12 },
    });

    const done = await admin.runs.get.query({ id: a.runId });
    expect(done.status).toBe('succeeded');
    expect(done.summary?.test_accuracy).toBe(0.61);
    expect(done.params?.total).toBe(15);
    expect(done.events.map((e) => e.type)).toEqual(['queued', 'leased', 'succeeded']);
    const series = await admin.runs.metrics.query({ runId: a.runId });
    expect(series.val_accuracy.map((p) => p.value)).toEqual([0.4, 0.5, 0.6000000000000001]);

    // The dashboard saw the points and the status changes of its sweep.
    await waitFor(
      () => updates.some((u) => u.runs.some((r) => r.runId === a.runId && r.status === 'succeeded')),
      5000,
      'succeeded update',
    );
    const pushed = updates.flatMap((u) =>
      u.metrics.filter((m) => m.runId === a.runId).flatMap((m) => m.points),
    );
    expect(pushed.filter((p) => p.name === 'val_accuracy').map((p) => p.step)).toEqual([1, 2, 3]);
    expect(updates.every((u) => u.room === `sweep:${sweep.id}`)).toBe(true);
    // Coalesced: 4 reportMetrics + statuses arrived in fewer events than calls.
    expect(updates.length).toBeLessThan(8);
    live.close();

    // Comparison across runs, grouped by a config key (grid order: fc/seed 1, fc/seed 2 were leased).
    const cmp = await admin.runs.compare.query({
      runIds: [a.runId, b.runId],
      metric: 'val_accuracy',
      groupBy: 'seed',
    });
    expect(cmp.groups.map((g) => g.key).sort()).toEqual(['1', '2']);
    expect(cmp.groups.find((g) => g.key === '2')?.points).toEqual([{ step: 1, mean: 0.5, std: null, n: 1 }]);
    const byHead = await admin.runs.compare.query({
      runIds: [a.runId, b.runId],
      metric: 'val_accuracy',
      groupBy: 'head',
    });
    expect(byHead.groups[0].points[0]).toMatchObject({ step: 1, mean: 0.45, n: 2 });
    expect(byHead.groups[0].points[0].std).toBeCloseTo(Math.SQRT1_2 * 0.1, 10);
    expect(cmp.groups.flatMap((g) => g.runIds).sort()).toEqual([a.runId, b.runId].sort());

    await trainer.trainer.complete.mutate({ runId: b.runId, leaseId: b.leaseId });
    // Config filter on runs.list.
    const gapRuns = await admin.runs.list.query({ sweepId: sweep.id, config: { head: 'gap', seed: 2 } });
    expect(gapRuns).toHaveLength(1);
    expect(gapRuns[0].config).toMatchObject({ head: 'gap', seed: 2 });
    await admin.sweeps.cancel.mutate({ id: sweep.id });
  });

  it('stores a resent metric batch once', async () => {
    const sweep = await admin.sweeps.create.mutate({ ...spec, name: 'idem', heads: ['gmp'], seeds: [1] });
    const [run] = (await trainer.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs;
    expect(run.runId).toBe(sweep.runIds[0]);
    const points = Array.from({ length: 100 }, (_, i) => ({
      name: 'batch/loss',
      step: i,
      epoch: 0,
      value: 1 / (i + 1),
    }));
    const first = await trainer.trainer.reportMetrics.mutate({
      runId: run.runId,
      leaseId: run.leaseId,
      points,
    });
    const again = await trainer.trainer.reportMetrics.mutate({
      runId: run.runId,
      leaseId: run.leaseId,
      points,
    });
    expect(first).toMatchObject({ inserted: 100, duplicates: 0 });
    expect(again).toMatchObject({ inserted: 0, duplicates: 100 });
    const { rows } = await api.services.db.pool.query(
      'SELECT count(*)::int AS n FROM metrics WHERE run_id = $1',
      [run.runId],
    );
    expect(rows[0].n).toBe(100);

    // Downsampling: at most maxPoints per series, the mean of each step range; sinceStep for catch-up.
    const down = await admin.runs.metrics.query({ runId: run.runId, maxPoints: 10 });
    expect(down['batch/loss']).toHaveLength(10);
    expect(down['batch/loss'][0].n).toBe(10);
    const mean0 = points.slice(0, 10).reduce((s, p) => s + p.value, 0) / 10;
    expect(down['batch/loss'][0].value).toBeCloseTo(mean0, 10);
    const since = await admin.runs.metrics.query({ runId: run.runId, sinceStep: 94 });
    expect(since['batch/loss'].map((p) => p.step)).toEqual([95, 96, 97, 98, 99]);
    await trainer.trainer.complete.mutate({ runId: run.runId, leaseId: run.leaseId });
  });

  it('requeues a run whose trainer stops heart-beating, with attempt+1 and its checkpoint', async () => {
    const sweep = await admin.sweeps.create.mutate({
      ...spec,
      name: 'lease',
      heads: ['gem'],
      seeds: [1],
      maxAttempts: 2,
    });
    const runId = sweep.runIds[0];
    const [first] = (await trainer.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs;
    expect(first.runId).toBe(runId);
    // Keep it alive past one lease length with heartbeats...
    for (let i = 0; i < 3; i++) {
      const hb = await trainer.trainer.heartbeat.mutate({
        trainerId,
        runs: [{ runId, leaseId: first.leaseId }],
      });
      expect(hb.runs[0].cancel).toBe(false);
      await new Promise((r) => setTimeout(r, 700));
    }
    expect((await admin.runs.get.query({ id: runId })).status).toBe('running');
    const ckpt = await uploadArtifact({
      url: api.url,
      token: trainerToken,
      runId,
      leaseId: first.leaseId,
      name: 'epoch-2.ckpt',
      kind: 'checkpoint',
      epoch: 2,
      body: new TextEncoder().encode('weights@2'),
    });
    expect(ckpt.size).toBe(9);
    // ...then go silent: the reaper hands the run back to the queue.
    await waitFor(
      async () => (await admin.runs.get.query({ id: runId })).status === 'queued',
      10000,
      'requeue',
    );
    const requeued = await admin.runs.get.query({ id: runId });
    expect(requeued.attempt).toBe(2);
    expect(requeued.events.map((e) => e.type)).toContain('lease_expired');

    // The stale lease can no longer write.
    const stale = await trpcRaw(api.url, 'trainer.reportMetrics', trainerToken, {
      runId,
      leaseId: first.leaseId,
      points: [{ name: 'loss', step: 1, value: 1 }],
    });
    expect(stale.status).toBe(403);
    const hb = await trainer.trainer.heartbeat.mutate({
      trainerId,
      runs: [{ runId, leaseId: first.leaseId }],
    });
    expect(hb.runs[0]).toMatchObject({ cancel: true });

    const [second] = (await trainer.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs;
    expect(second).toMatchObject({ runId, attempt: 2, resume: { artifactId: ckpt.id, epoch: 2 } });
    const bytes = await downloadArtifact({
      url: api.url,
      token: trainerToken,
      path: second.resume!.downloadPath,
    });
    expect(new TextDecoder().decode(bytes)).toBe('weights@2');
    expect((await admin.runs.get.query({ id: runId })).events.map((e) => e.type)).toContain('resumed');

    // Lost again on the last attempt: failed, with the reason.
    await waitFor(async () => (await admin.runs.get.query({ id: runId })).status === 'failed', 10000, 'fail');
    const failed = await admin.runs.get.query({ id: runId });
    expect(failed.error).toMatch(/lease expired.*gave up after 2 attempts/);

    // Retrying a failed run is one call.
    expect(await admin.runs.retry.mutate({ id: runId })).toMatchObject({ status: 'queued', attempt: 3 });
    const [third] = (await trainer.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs;
    expect(third).toMatchObject({ runId, attempt: 3 });
    await trainer.trainer.fail.mutate({ runId, leaseId: third.leaseId, error: 'NaN loss', retryable: false });
    expect(await admin.runs.get.query({ id: runId })).toMatchObject({ status: 'failed', error: 'NaN loss' });
  });

  it('sends a cancel to the trainer holding the run (socket push and heartbeat)', async () => {
    const sweep = await admin.sweeps.create.mutate({
      ...spec,
      name: 'cancel',
      heads: ['avgmax'],
      seeds: [1],
    });
    const sock = connectTrainerSocket({ url: api.url, token: trainerToken, trainerId });
    await waitFor(() => sock.connected, 5000, 'trainer socket');
    const got = new Promise<{ runId: string; reason: string }>((resolve) => sock.on('cancel', resolve));
    const [run] = (await trainer.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs;
    expect(run.runId).toBe(sweep.runIds[0]);
    const t0 = Date.now();
    await admin.runs.cancel.mutate({ id: run.runId });
    const msg = await got;
    expect(msg.runId).toBe(run.runId);
    expect(Date.now() - t0).toBeLessThan(2000);
    sock.close();
    const hb = await trainer.trainer.heartbeat.mutate({
      trainerId,
      runs: [{ runId: run.runId, leaseId: run.leaseId }],
    });
    expect(hb.runs[0]).toMatchObject({ cancel: true, reason: 'canceled' });
    expect((await admin.sweeps.get.query({ id: sweep.id })).status).toBe('done');

    // Re-running the sweep is one call: a new sweep, same spec.
    const again = await admin.sweeps.rerun.mutate({ id: sweep.id, mode: 'all' });
    expect(again.requeued).toBe(1);
    expect((await admin.sweeps.get.query({ id: again.sweepId })).parentId).toBe(sweep.id);
    await admin.sweeps.cancel.mutate({ id: again.sweepId });
  });

  it('only leases runs whose requirements the trainer meets', async () => {
    const sweep = await admin.sweeps.create.mutate({
      ...spec,
      name: 'gpu',
      heads: ['catavgmax'],
      seeds: [1],
      requires: { gpu: true },
    });
    expect((await trainer.trainer.lease.mutate({ trainerId, freeSlots: 2 })).runs).toHaveLength(0);
    const gpuId = (
      await trainer.trainer.register.mutate({
        name: 'box-gpu',
        slots: 1,
        capabilities: { backend: 'tensorflow', gpu: true },
      })
    ).trainerId;
    const got = (await trainer.trainer.lease.mutate({ trainerId: gpuId, freeSlots: 1 })).runs;
    expect(got.map((r) => r.runId)).toEqual(sweep.runIds);
    expect((await admin.trainers.list.query()).find((t) => t.id === gpuId)?.runningRunIds).toEqual(
      sweep.runIds,
    );
    await admin.sweeps.cancel.mutate({ id: sweep.id });
  });

  it('answers 401, 403 and 400 and changes nothing on bad input', async () => {
    expect((await fetch(`${api.url}/health`)).status).toBe(200);
    expect((await trpcRaw(api.url, 'sweeps.list', null, undefined, 'GET')).status).toBe(401);
    expect((await trpcRaw(api.url, 'sweeps.list', 'hb_nope', undefined, 'GET')).status).toBe(401);
    expect((await fetch(`${api.url}/artifacts/00000000-0000-0000-0000-000000000000/content`)).status).toBe(
      401,
    );

    const member = (await admin.tokens.create.mutate({ name: 'ann', role: 'member', user: 'ann' })).token;
    expect((await trpcRaw(api.url, 'sweeps.list', member, undefined, 'GET')).status).toBe(200);
    expect((await trpcRaw(api.url, 'tokens.list', member, undefined, 'GET')).status).toBe(403);
    expect((await trpcRaw(api.url, 'tokens.create', member, { name: 'x', role: 'admin' })).status).toBe(403);
    // Trainer tokens: only the trainer procedures, only for runs they hold.
    expect((await trpcRaw(api.url, 'sweeps.list', trainerToken, undefined, 'GET')).status).toBe(403);
    expect(
      (await trpcRaw(api.url, 'runs.cancel', trainerToken, { id: '00000000-0000-0000-0000-000000000000' }))
        .status,
    ).toBe(403);
    const other = (await admin.tokens.create.mutate({ name: 'other', role: 'trainer' })).token;
    const s = await admin.sweeps.create.mutate({ ...spec, name: 'auth', heads: ['fc'], seeds: [9] });
    const [held] = (await trainer.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs;
    expect(held.runId).toBe(s.runIds[0]);
    const foreign = await trpcRaw(api.url, 'trainer.reportMetrics', other, {
      runId: held.runId,
      leaseId: held.leaseId,
      points: [{ name: 'loss', step: 0, value: 1 }],
    });
    expect(foreign.status).toBe(403);
    expect((await trpcRaw(api.url, 'trainer.lease', other, { trainerId, freeSlots: 1 })).status).toBe(403);
    const put = await fetch(`${api.url}/artifacts/${held.runId}/x.png?kind=figure&leaseId=${held.leaseId}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${other}` },
      body: 'png',
    });
    expect(put.status).toBe(403);
    // Refused before a large body was read: the socket closes after the answer, and the answer says so,
    // so a keep-alive client does not send its next request on it (it did: "other side closed", flakily).
    const bigPut = await fetch(
      `${api.url}/artifacts/${held.runId}/y.png?kind=figure&leaseId=${held.leaseId}`,
      {
        method: 'PUT',
        headers: { authorization: `Bearer ${other}` },
        body: new Uint8Array(8 << 20),
      },
    );
    expect(bigPut.status).toBe(403);
    expect(bigPut.headers.get('connection')).toBe('close');
    expect((await admin.sweeps.list.query()).length).toBeGreaterThan(0); // the next request goes through

    // 400 with the offending fields; nothing stored.
    const bad = await trpcRaw(api.url, 'sweeps.create', api.token, {
      ...spec,
      epochs: 0,
      heads: ['nope'],
      extra: 1,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error?.data.issues?.map((i) => i.path).sort()).toEqual(['', 'epochs', 'heads.0'].sort());
    expect(bad.body.error?.message).toMatch(/epochs/);
    const malformed = await trpcRaw(api.url, 'sweeps.create', api.token, '{"name": ');
    expect(malformed.status).toBe(400);
    const badPoints = await trpcRaw(api.url, 'trainer.reportMetrics', trainerToken, {
      runId: held.runId,
      leaseId: held.leaseId,
      points: [
        { name: 'loss', step: 5, value: 1 },
        { name: 'loss', step: -1, value: 'x' },
      ],
    });
    expect(badPoints.status).toBe(400);
    expect(badPoints.body.error?.data.issues?.map((i) => i.path)).toEqual([
      'points.1.step',
      'points.1.value',
    ]);
    const tooMany = await trpcRaw(api.url, 'trainer.reportMetrics', trainerToken, {
      runId: held.runId,
      leaseId: held.leaseId,
      points: Array.from({ length: 5001 }, (_, i) => ({ name: 'loss', step: i, value: 1 })),
    });
    expect(tooMany.status).toBe(400);
    const { rows } = await api.services.db.pool.query(
      'SELECT count(*)::int AS n FROM metrics WHERE run_id = $1',
      [held.runId],
    );
    expect(rows[0].n).toBe(0);
    const badPut = await fetch(
      `${api.url}/artifacts/${held.runId}/x.png?kind=movie&leaseId=${held.leaseId}`,
      {
        method: 'PUT',
        headers: { authorization: `Bearer ${trainerToken}` },
        body: 'png',
      },
    );
    expect(badPut.status).toBe(400);
    expect(((await badPut.json()) as { error: string }).error).toMatch(/kind/);
    const sweepsBefore = (await admin.sweeps.list.query()).length;
    expect(sweepsBefore).toBeGreaterThan(0);
    expect((await trpcRaw(api.url, 'sweeps.create', api.token, { ...spec, seeds: [] })).status).toBe(400);
    expect((await admin.sweeps.list.query()).length).toBe(sweepsBefore);

    // Revoked tokens stop working at once.
    const list = await admin.tokens.list.query();
    const ann = list.find((t) => t.name === 'ann')!;
    expect(JSON.stringify(list)).not.toContain(member); // secrets are never listed
    await admin.tokens.revoke.mutate({ id: ann.id });
    expect((await trpcRaw(api.url, 'sweeps.list', member, undefined, 'GET')).status).toBe(401);
    await admin.sweeps.cancel.mutate({ id: s.id });
  });

  it('limits artifact uploads', async () => {
    const s = await admin.sweeps.create.mutate({ ...spec, name: 'art', heads: ['fc'], seeds: [11] });
    const [held] = (await trainer.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs;
    expect(held.runId).toBe(s.runIds[0]);
    api.services.artifacts.maxBytes = 1024;
    const big = await fetch(
      `${api.url}/artifacts/${held.runId}/big.bin?kind=features&leaseId=${held.leaseId}`,
      {
        method: 'PUT',
        headers: { authorization: `Bearer ${trainerToken}` },
        body: new Uint8Array(4096),
      },
    );
    expect(big.status).toBe(413);
    const small = await trainer.trainer.uploadArtifact.mutate({
      runId: held.runId,
      leaseId: held.leaseId,
      name: 'cm.json',
      kind: 'confusion',
      contentBase64: Buffer.from('[[1,0],[0,1]]').toString('base64'),
    });
    expect(small.sha256).toHaveLength(64);
    expect((await admin.artifacts.list.query({ runId: held.runId })).map((a) => a.name)).toEqual(['cm.json']);
    const dl = await admin.artifacts.download.query({ id: small.id });
    const body = await downloadArtifact({ url: api.url, token: api.token, path: dl.path });
    expect(new TextDecoder().decode(body)).toBe('[[1,0],[0,1]]');
    await admin.sweeps.cancel.mutate({ id: s.id });
  });
});
