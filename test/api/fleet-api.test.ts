import { createHash } from 'node:crypto';
import { createApi } from '@headbench/api';
import {
  createHeadbenchClient,
  type HeadbenchClient,
  type LeasedRun,
  uploadArtifact,
  uploadDataset,
} from '@headbench/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi, waitFor } from './helpers.js';

const spec = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  datasets: ['generated:flowers17?perClass=4'],
  backbones: ['smallcnn' as const],
  heads: ['gap' as const],
  optimizers: ['adam' as const],
  seeds: [1],
  epochs: 2,
  batchSize: 8,
  size: 32,
  lr: 0.001,
  ...extra,
});

const get = (url: string, path: string, token: string) =>
  fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });

describe('trainer access, release, datasets, meta', () => {
  let api: TestApi;
  let admin: HeadbenchClient;
  let trainerToken: string;
  let trainer: HeadbenchClient;
  let trainerId: string;
  let other: HeadbenchClient;
  let otherToken: string;
  let otherId: string;

  /** Leases exactly the runs of one sweep (the queue is shared, so drain others first). */
  async function leaseOne(client: HeadbenchClient, id: string): Promise<LeasedRun> {
    const got = await waitFor(
      async () => (await client.trainer.lease.mutate({ trainerId: id, freeSlots: 1 })).runs[0],
      10_000,
      'a lease',
    );
    return got;
  }

  beforeAll(async () => {
    api = await startTestApi({ leaseSeconds: 2 });
    admin = createHeadbenchClient({ url: api.url, token: api.token });
    trainerToken = (await admin.tokens.create.mutate({ name: 't1', role: 'trainer', user: 'fleet' })).token;
    trainer = createHeadbenchClient({ url: api.url, token: trainerToken, batch: false });
    trainerId = (
      await trainer.trainer.register.mutate({ name: 'box-1', capabilities: { backend: 'cpu', gpu: false } })
    ).trainerId;
    otherToken = (await admin.tokens.create.mutate({ name: 't2', role: 'trainer', user: 'fleet2' })).token;
    other = createHeadbenchClient({ url: api.url, token: otherToken, batch: false });
    otherId = (
      await other.trainer.register.mutate({ name: 'box-2', capabilities: { backend: 'cpu', gpu: false } })
    ).trainerId;
  });
  afterAll(async () => {
    await api?.dispose();
  });

  it('release hands a run back without using up an attempt; the next lease resumes its checkpoint', async () => {
    const sweep = await admin.sweeps.create.mutate(spec('release'));
    const first = await leaseOne(trainer, trainerId);
    expect(first.runId).toBe(sweep.runIds[0]);
    expect(first.attempt).toBe(1);
    await uploadArtifact({
      url: api.url,
      token: trainerToken,
      runId: first.runId,
      leaseId: first.leaseId,
      name: 'checkpoint.tar',
      kind: 'checkpoint',
      epoch: 1,
      body: new TextEncoder().encode('ckpt@1'),
    });
    const out = await trainer.trainer.release.mutate({
      runId: first.runId,
      leaseId: first.leaseId,
      reason: 'trainer box-1 shut down (SIGTERM)',
      checkpointEpoch: 1,
    });
    expect(out).toEqual({ runId: first.runId, status: 'queued', attempt: 1 });
    // The old lease is dead.
    await expect(
      trainer.trainer.reportMetrics.mutate({
        runId: first.runId,
        leaseId: first.leaseId,
        points: [{ name: 'loss', step: 1, value: 1 }],
      }),
    ).rejects.toThrow(/does not hold that run/);
    const again = await leaseOne(other, otherId);
    expect(again.runId).toBe(first.runId);
    expect(again.attempt).toBe(1);
    expect(again.resume?.epoch).toBe(1);
    const run = await admin.runs.get.query({ id: first.runId });
    expect(run.attempt).toBe(1);
    const released = run.events.find((e) => e.type === 'released');
    expect(released?.data).toMatchObject({ reason: /SIGTERM/, checkpointEpoch: 1, resumeFromEpoch: 1 });
    await other.trainer.complete.mutate({ runId: again.runId, leaseId: again.leaseId });
  });

  it('a trainer token reads the model its run references (weights run:<id>), and gets 403 for anything else', async () => {
    // Source run with a final model and a report, finished by trainer 2.
    await admin.sweeps.create.mutate(spec('pretrain'));
    const src = await leaseOne(other, otherId);
    const modelBytes = new TextEncoder().encode('the model');
    const model = await uploadArtifact({
      url: api.url,
      token: otherToken,
      runId: src.runId,
      leaseId: src.leaseId,
      name: 'model.tar',
      kind: 'model',
      body: modelBytes,
    });
    expect(model.kind).toBe('model');
    const report = await uploadArtifact({
      url: api.url,
      token: otherToken,
      runId: src.runId,
      leaseId: src.leaseId,
      name: 'report.md',
      kind: 'report',
      body: new TextEncoder().encode('# report'),
    });
    await other.trainer.complete.mutate({ runId: src.runId, leaseId: src.leaseId });

    await admin.sweeps.create.mutate(spec('transfer', { weights: [`run:${src.runId}`] }));
    const run = await leaseOne(trainer, trainerId);
    expect(run.weights).toEqual({
      runId: src.runId,
      artifactId: model.id,
      downloadPath: `/artifacts/${model.id}/content`,
      sha256: createHash('sha256').update(modelBytes).digest('hex'),
      size: modelBytes.length,
    });
    const ok = await get(api.url, run.weights!.downloadPath, trainerToken);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('application/x-tar');
    expect(new TextDecoder().decode(await ok.arrayBuffer())).toBe('the model');
    // Another artifact of that run, and the model through another trainer's token: 403.
    expect((await get(api.url, report.downloadPath, trainerToken)).status).toBe(403);
    const third = (await admin.tokens.create.mutate({ name: 't3', role: 'trainer' })).token;
    expect((await get(api.url, run.weights!.downloadPath, third)).status).toBe(403);
    // Once the run is done, the model is not readable any more either.
    await trainer.trainer.complete.mutate({ runId: run.runId, leaseId: run.leaseId });
    expect((await get(api.url, run.weights!.downloadPath, trainerToken)).status).toBe(403);
    // Members read everything, with proper content types.
    const md = await get(api.url, report.downloadPath, api.token);
    expect(md.headers.get('content-type')).toMatch(/^text\/markdown/);
    expect(await md.text()).toBe('# report');
  });

  it('uploads a dataset; the lease carries its hash and archive, which only the holding trainer can GET', async () => {
    const bytes = Buffer.from('PK fake zip archive bytes');
    const sha = createHash('sha256').update(bytes).digest('hex');
    const up = await uploadDataset({
      url: api.url,
      token: api.token,
      name: 'tiny',
      format: 'zip',
      body: bytes,
      contentHash: 'abcdef0123456789',
      classes: ['a', 'b'],
    });
    expect(up.archive).toMatchObject({ sha256: sha, size: bytes.length, format: 'zip' });
    const listed = (await admin.datasets.list.query()).find((d) => d.name === 'tiny');
    expect(listed?.archive?.sha256).toBe(sha);
    expect(listed?.classes).toEqual(['a', 'b']);
    // Too large: 413, nothing registered.
    const small = await createApi({
      databaseUrl: api.databaseUrl,
      home: api.home,
      port: 0,
      quiet: true,
      maxDatasetBytes: 8,
    });
    try {
      await expect(
        uploadDataset({ url: small.url, token: api.token, name: 'big', format: 'tar', body: bytes }),
      ).rejects.toThrow(/413/);
    } finally {
      await small.close();
    }
    expect((await admin.datasets.list.query()).some((d) => d.name === 'big')).toBe(false);
    // Trainer tokens cannot upload.
    await expect(
      uploadDataset({ url: api.url, token: trainerToken, name: 'x', format: 'zip', body: bytes }),
    ).rejects.toThrow(/403/);
    // Before holding a run on it: 403.
    expect((await get(api.url, up.archive.downloadPath, trainerToken)).status).toBe(403);

    await admin.sweeps.create.mutate(spec('on tiny', { datasets: ['dataset:tiny'] }));
    const run = await leaseOne(trainer, trainerId);
    expect(run.dataset).toEqual({
      name: 'tiny',
      uri: up.uri,
      contentHash: 'abcdef0123456789',
      classes: ['a', 'b'],
      archive: { downloadPath: '/datasets/tiny/content', sha256: sha, size: bytes.length, format: 'zip' },
    });
    const res = await get(api.url, run.dataset!.archive!.downloadPath, trainerToken);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    const got = Buffer.from(await res.arrayBuffer());
    expect(createHash('sha256').update(got).digest('hex')).toBe(sha);
    await trainer.trainer.complete.mutate({ runId: run.runId, leaseId: run.leaseId });
    expect((await get(api.url, run.dataset!.archive!.downloadPath, trainerToken)).status).toBe(403);
  });

  it('meta.names lists the core names; sweeps carry their creator', async () => {
    const names = await admin.meta.names.query();
    expect(names.heads).toEqual(expect.arrayContaining(['fc', 'gap', 'gmp']));
    expect(names.backbones).toContain('smallcnn');
    expect(names.optimizers).toEqual(expect.arrayContaining(['adam', 'sgd', 'rmsprop']));
    expect(names.trainable).toEqual(['frozen', 'all']);
    expect(names.backends).toContain('wasm');
    const memberToken = (await admin.tokens.create.mutate({ name: 'alice', role: 'member', user: 'alice' }))
      .token;
    const alice = createHeadbenchClient({ url: api.url, token: memberToken });
    const s = await alice.sweeps.create.mutate(spec('by alice', { datasets: ['generated:x'] }));
    expect((await admin.sweeps.get.query({ id: s.id })).creator).toBe('alice');
    expect((await admin.sweeps.list.query()).find((x) => x.id === s.id)?.creator).toBe('alice');
    await admin.sweeps.cancel.mutate({ id: s.id });
  });

  it('after a restart, the reaper waits one lease length so live trainers can heartbeat', async () => {
    await admin.sweeps.create.mutate(spec('grace'));
    const run = await leaseOne(trainer, trainerId);
    const held = { trainerId, runs: [{ runId: run.runId, leaseId: run.leaseId }] };
    await api.close(); // down for longer than the lease
    await new Promise((r) => setTimeout(r, 3000));
    const again = await createApi({
      databaseUrl: api.databaseUrl,
      home: api.home,
      port: 0,
      quiet: true,
      leaseSeconds: 2,
    });
    try {
      const t = createHeadbenchClient({ url: again.url, token: trainerToken, batch: false });
      const a = createHeadbenchClient({ url: again.url, token: api.token });
      await new Promise((r) => setTimeout(r, 1000)); // reaper ticks: still in its grace period
      expect((await a.runs.get.query({ id: run.runId })).status).toBe('running');
      const hb = await t.trainer.heartbeat.mutate(held);
      expect(hb.runs[0].cancel).toBe(false);
      await new Promise((r) => setTimeout(r, 1500)); // grace over; the lease was renewed
      expect((await a.runs.get.query({ id: run.runId })).status).toBe('running');
      // Without heartbeats the run does go back once its lease ran out.
      await waitFor(
        async () => (await a.runs.get.query({ id: run.runId })).status === 'queued',
        10_000,
        'requeue after the lease',
      );
      const events = (await a.runs.get.query({ id: run.runId })).events.map((e) => e.type);
      expect(events).toContain('lease_expired');
    } finally {
      await again.close();
    }
  });
});
