// Issue 15's attacks on the API, each against the real API on a real Postgres: an oversized sweep, a
// missing or unreadable artifact file, a queue job lost to pg-boss retention, a stale-lease checkpoint
// upload, overwriting a registered dataset, changing another member's sweep, and undurable metric acks.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createHeadbenchClient,
  type HeadbenchClient,
  type LeasedRun,
  uploadArtifact,
  uploadDataset,
} from '@headbench/client';
import { MAX_SWEEP_CONFIG_BYTES } from '@headbench/spec';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueFor } from '../../apps/api/src/services/queue.ts';
import { startTestApi, type TestApi, trpcRaw, waitFor } from './helpers.js';

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

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const get = (url: string, path: string, token: string) =>
  fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });

let api: TestApi;
let admin: HeadbenchClient;
let trainerToken: string;
let trainer: HeadbenchClient;
let trainerId: string;
let aliceToken: string;
let alice: HeadbenchClient;
let bob: HeadbenchClient;

/** Leases the one queued run (tests queue one at a time). */
async function leaseOne(client: HeadbenchClient, id: string): Promise<LeasedRun> {
  return waitFor(
    async () => (await client.trainer.lease.mutate({ trainerId: id, freeSlots: 1 })).runs[0],
    10_000,
    'a lease',
  );
}

beforeAll(async () => {
  api = await startTestApi({ leaseSeconds: 30, queueRetentionSeconds: 1 });
  admin = createHeadbenchClient({ url: api.url, token: api.token });
  trainerToken = (await admin.tokens.create.mutate({ name: 't1', role: 'trainer', user: 'fleet' })).token;
  trainer = createHeadbenchClient({ url: api.url, token: trainerToken, batch: false });
  trainerId = (await trainer.trainer.register.mutate({ name: 'box-1', capabilities: { backend: 'cpu' } }))
    .trainerId;
  aliceToken = (await admin.tokens.create.mutate({ name: 'alice', role: 'member', user: 'alice' })).token;
  alice = createHeadbenchClient({ url: api.url, token: aliceToken });
  const bobToken = (await admin.tokens.create.mutate({ name: 'bob', role: 'member', user: 'bob' })).token;
  bob = createHeadbenchClient({ url: api.url, token: bobToken });
});
afterAll(async () => {
  await api?.dispose();
});

describe('issue 15: attacks on the API', () => {
  it('#2 oversized sweep spec: valid fields whose configs add up past the total-bytes cap are refused, nothing stored', async () => {
    // Each field within its own bound (1000 names of 128 characters), but copied into 200 runs.
    const classes = Array.from({ length: 1000 }, (_, i) => `${'c'.repeat(124)}${String(i).padStart(4, '0')}`);
    const res = await trpcRaw(
      api.url,
      'sweeps.create',
      aliceToken,
      spec('too many bytes', { classes, seeds: Array.from({ length: 200 }, (_, i) => i) }),
    );
    expect(res.status).toBe(400);
    expect(res.body.error?.message).toMatch(
      new RegExp(
        `^\\(input\\): the sweep's 200 run configs would take up to \\d+ bytes; the limit is ${MAX_SWEEP_CONFIG_BYTES}`,
      ),
    );
    expect(await alice.sweeps.list.query()).toEqual([]);
    // The same classes over a few runs are fine.
    const ok = await alice.sweeps.create.mutate(spec('fits', { classes, seeds: [1, 2] }));
    expect(ok.runs).toBe(2);
    await alice.sweeps.cancel.mutate({ id: ok.id });
  });

  it('#4 missing or unreadable artifact file: 404 / 500 as JSON, the API stays up', async () => {
    await admin.sweeps.create.mutate(spec('files'));
    const run = await leaseOne(trainer, trainerId);
    const up = (name: string) =>
      uploadArtifact({
        url: api.url,
        token: trainerToken,
        runId: run.runId,
        leaseId: run.leaseId,
        name,
        kind: 'report',
        body: Buffer.from(`bytes of ${name}`),
      });
    const gone = await up('gone.txt');
    const odd = await up('odd.txt');
    // The store's files are under <home>/artifacts/<runId>/...: delete one, replace the other by a folder.
    const files = async (dir: string): Promise<string[]> =>
      (await readdir(dir, { withFileTypes: true, recursive: true }))
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name));
    const stored = await files(join(api.home, 'artifacts', run.runId));
    const goneFile = stored.find((f) => f.endsWith('-gone.txt'))!;
    const oddFile = stored.find((f) => f.endsWith('-odd.txt'))!;
    await rm(goneFile);
    await rm(oddFile);
    await mkdir(oddFile);

    const missing = await get(api.url, gone.downloadPath, api.token);
    expect(missing.status).toBe(404);
    const body = (await missing.json()) as { error: string; code: string };
    expect(body).toEqual({ error: `artifact ${gone.id}: the stored file is missing`, code: 'NOT_FOUND' });
    expect(body.error).not.toContain(api.home); // no server paths in answers
    const broken = await get(api.url, odd.downloadPath, api.token);
    expect(broken.status).toBe(500);
    expect(await broken.json()).toEqual({ error: 'internal error', code: 'INTERNAL_SERVER_ERROR' });
    // Still serving, over and over.
    for (let i = 0; i < 3; i++) expect((await get(api.url, gone.downloadPath, api.token)).status).toBe(404);
    expect((await fetch(`${api.url}/health`)).status).toBe(200);
    expect((await admin.whoami.query()).role).toBe('admin');
    await trainer.trainer.complete.mutate({ runId: run.runId, leaseId: run.leaseId });
  });

  it('#4 an aborted download closes its file (no descriptor left open per abort)', async () => {
    await admin.sweeps.create.mutate(spec('aborted download'));
    const run = await leaseOne(trainer, trainerId);
    const art = await uploadArtifact({
      url: api.url,
      token: trainerToken,
      runId: run.runId,
      leaseId: run.leaseId,
      name: 'big.bin',
      kind: 'features',
      body: new Uint8Array(16 * 1024 * 1024),
    });
    const dir = join(api.home, 'artifacts', run.runId, run.leaseId);
    const file = join(dir, (await readdir(dir)).find((f) => f.endsWith('-big.bin'))!);
    // This API runs in this process: its open files are ours.
    const opened = async () => {
      let n = 0;
      for (const fd of await readdir('/proc/self/fd'))
        if ((await readlink(`/proc/self/fd/${fd}`).catch(() => '')) === file) n++;
      return n;
    };
    const abort = new AbortController();
    const res = await fetch(`${api.url}${art.downloadPath}`, {
      headers: { authorization: `Bearer ${api.token}` },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    await res.body!.getReader().read();
    expect(await opened()).toBe(1);
    abort.abort();
    await waitFor(async () => (await opened()) === 0, 10_000, 'the aborted download to close its file');
    expect((await fetch(`${api.url}/health`)).status).toBe(200);
    await trainer.trainer.complete.mutate({ runId: run.runId, leaseId: run.leaseId });
  });

  it('#9 stale-lease checkpoint upload: a lease lost while the bytes stream in is refused at commit; the resume point stays', async () => {
    await admin.sweeps.create.mutate(spec('resume point'));
    const first = await leaseOne(trainer, trainerId);
    const good = Buffer.from('checkpoint of epoch 1');
    const ckpt1 = await uploadArtifact({
      url: api.url,
      token: trainerToken,
      runId: first.runId,
      leaseId: first.leaseId,
      name: 'checkpoint.tar',
      kind: 'checkpoint',
      epoch: 1,
      body: good,
    });

    // The same trainer starts uploading epoch 2 under its lease: the first bytes are in, the rest waits.
    let push!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        push = c;
      },
    });
    push.enqueue(new TextEncoder().encode('stale bytes, part 1; '));
    const stale = fetch(
      `${api.url}/artifacts/${first.runId}/checkpoint.tar?kind=checkpoint&epoch=2&leaseId=${first.leaseId}`,
      {
        method: 'PUT',
        headers: { authorization: `Bearer ${trainerToken}`, 'content-type': 'application/octet-stream' },
        body,
        duplex: 'half',
      } as RequestInit,
    );
    const leaseDir = join(api.home, 'artifacts', first.runId, first.leaseId);
    await waitFor(
      async () => (await readdir(leaseDir)).some((f) => f.endsWith('.part')),
      10_000,
      'the upload to start writing',
    );
    // Meanwhile the lease is lost: the run goes back to the queue and another attempt leases it.
    await trainer.trainer.release.mutate({ runId: first.runId, leaseId: first.leaseId, reason: 'test' });
    const second = await leaseOne(trainer, trainerId);
    expect(second.runId).toBe(first.runId);
    expect(second.resume).toEqual({
      artifactId: ckpt1.id,
      epoch: 1,
      downloadPath: `/artifacts/${ckpt1.id}/content`,
      sha256: sha256(good),
    });
    push.enqueue(new TextEncoder().encode('part 2'));
    push.close();
    const res = await stale;
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toBe(
      'this trainer no longer holds that run: lease lost',
    );

    // The resume point is the first checkpoint, its bytes intact; the refused upload left no file.
    const detail = await admin.runs.get.query({ id: first.runId });
    expect(detail.checkpointArtifactId).toBe(ckpt1.id);
    expect(detail.checkpointEpoch).toBe(1);
    const bytes = Buffer.from(
      await (await get(api.url, second.resume!.downloadPath, trainerToken)).arrayBuffer(),
    );
    expect(sha256(bytes)).toBe(second.resume!.sha256);
    expect(await readdir(leaseDir)).toEqual([expect.stringMatching(/-checkpoint\.tar$/)]);
    // A stale lease is refused before any byte too; the current attempt writes a file of its own.
    await expect(
      uploadArtifact({
        url: api.url,
        token: trainerToken,
        runId: first.runId,
        leaseId: first.leaseId,
        name: 'checkpoint.tar',
        kind: 'checkpoint',
        epoch: 3,
        body: Buffer.from('late'),
      }),
    ).rejects.toThrow(/403.*no longer holds that run/);
    const ckpt2 = await uploadArtifact({
      url: api.url,
      token: trainerToken,
      runId: second.runId,
      leaseId: second.leaseId,
      name: 'checkpoint.tar',
      kind: 'checkpoint',
      epoch: 2,
      body: Buffer.from('checkpoint of epoch 2'),
    });
    expect((await admin.runs.get.query({ id: first.runId })).checkpointArtifactId).toBe(ckpt2.id);
    // The replaced checkpoint's file went once the new one was committed.
    expect(await readdir(leaseDir)).toEqual([]);
    expect((await readdir(join(api.home, 'artifacts', first.runId, second.leaseId))).length).toBe(1);
    await trainer.trainer.complete.mutate({ runId: second.runId, leaseId: second.leaseId });
  });

  it('#13 overwriting a registered dataset: refused (409) by register and by upload; the stored archive is kept', async () => {
    const first = await alice.datasets.register.mutate({ name: 'cats', uri: '/data/cats', classes: ['a'] });
    // Registering the very same record again is harmless.
    expect(
      (await alice.datasets.register.mutate({ name: 'cats', uri: '/data/cats', classes: ['a'] })).id,
    ).toBe(first.id);
    const swap = await trpcRaw(api.url, 'datasets.register', aliceToken, {
      name: 'cats',
      uri: 'http://evil.example/cats.zip',
      contentHash: 'ffffffffffffffff',
    });
    expect(swap.status).toBe(409);
    expect(swap.body.error?.message).toBe(
      'dataset cats is already registered, and datasets never change: register the new version under a new name (e.g. cats@2)',
    );
    const bytes = Buffer.from('PK original archive');
    const up = await uploadDataset({
      url: api.url,
      token: aliceToken,
      name: 'dogs',
      format: 'zip',
      body: bytes,
    });
    for (const name of ['dogs', 'cats'])
      await expect(
        uploadDataset({
          url: api.url,
          token: aliceToken,
          name,
          format: 'zip',
          body: Buffer.from('PK other'),
        }),
      ).rejects.toThrow(new RegExp(`\\(409\\): dataset ${name} is already registered`));
    await expect(alice.datasets.register.mutate({ name: 'dogs', uri: up.uri, classes: [] })).rejects.toThrow(
      /already registered/,
    );
    const listed = await admin.datasets.list.query();
    expect(listed.find((d) => d.name === 'cats')).toMatchObject({ uri: '/data/cats', contentHash: null });
    expect(listed.find((d) => d.name === 'dogs')?.archive?.sha256).toBe(sha256(bytes));
    const back = Buffer.from(await (await get(api.url, up.archive.downloadPath, aliceToken)).arrayBuffer());
    expect(sha256(back)).toBe(sha256(bytes));
    // A new version is a new name.
    expect(
      (await alice.datasets.register.mutate({ name: 'cats@2', uri: '/data/cats2', classes: [] })).name,
    ).toBe('cats@2');
  });

  it("#13 cancel/retry of another member's sweep: 403 for members, allowed to its creator and to admins", async () => {
    const s = await alice.sweeps.create.mutate(spec("alice's", { seeds: [1, 2] }));
    const [r1, r2] = s.runIds;
    const refused = /belongs to alice; only its creator or an admin may cancel or retry its runs/;
    await expect(bob.sweeps.cancel.mutate({ id: s.id })).rejects.toThrow(refused);
    await expect(bob.runs.cancel.mutate({ id: r1 })).rejects.toThrow(refused);
    await expect(bob.sweeps.rerun.mutate({ id: s.id, mode: 'failed' })).rejects.toThrow(refused);
    expect((await admin.runs.get.query({ id: r1 })).status).toBe('queued');
    // Alice cancels her run; bob cannot retry it; an admin can.
    expect((await alice.runs.cancel.mutate({ id: r1 })).status).toBe('canceled');
    expect((await admin.runs.get.query({ id: r1 })).error).toBe('canceled by alice');
    await expect(bob.runs.retry.mutate({ id: r1 })).rejects.toThrow(refused);
    expect((await admin.runs.retry.mutate({ id: r1 })).status).toBe('queued');
    // Copying a sweep (rerun all) makes a new sweep of bob's own, which he may cancel.
    const copy = await bob.sweeps.rerun.mutate({ id: s.id, mode: 'all' });
    expect((await admin.sweeps.get.query({ id: copy.sweepId })).creator).toBe('bob');
    expect((await bob.sweeps.cancel.mutate({ id: copy.sweepId })).canceled).toBe(2);
    expect((await admin.sweeps.cancel.mutate({ id: s.id })).canceled).toBe(2);
    expect((await admin.runs.get.query({ id: r2 })).status).toBe('canceled');
    // Unknown ids are 404, not 403.
    await expect(bob.runs.cancel.mutate({ id: '00000000-0000-4000-8000-000000000000' })).rejects.toThrow(
      /no run/,
    );
  });

  it('#6 pg-boss retention: a queued run whose job was deleted by retention is queued again, not lost', async () => {
    const s = await admin.sweeps.create.mutate(spec('waits long'));
    const queue = queueFor(undefined);
    const boss = api.services.runs.boss;
    expect((await boss.getQueue(queue))?.retentionSeconds).toBe(1); // this API's shortened retention
    const jobId = async () =>
      (await api.services.db.pool.query('SELECT job_id FROM runs WHERE id = $1', [s.runIds[0]])).rows[0]
        .job_id as string;
    const lost = await jobId();
    // pg-boss's own maintenance deletes the waiting job once its retention passed. It runs once a day per
    // queue: clearing its claim stamp stands for that day going by.
    await waitFor(
      async () => {
        await api.services.db.pool.query('UPDATE pgboss.queue SET maintain_on = NULL WHERE name = $1', [
          queue,
        ]);
        await boss.supervise(queue);
        return !(await boss.getJobById(queue, lost));
      },
      15_000,
      'pg-boss retention to delete the job',
    );
    expect((await admin.runs.get.query({ id: s.runIds[0] })).status).toBe('queued');
    expect(await api.services.runs.repairQueue()).toBe(1);
    expect(await jobId()).not.toBe(lost);
    const run = await leaseOne(trainer, trainerId);
    expect(run.runId).toBe(s.runIds[0]);
    const events = (await admin.runs.get.query({ id: run.runId })).events.map((e) => e.type);
    expect(events).toEqual(['queued', 'requeued', 'leased']);
    await trainer.trainer.complete.mutate({ runId: run.runId, leaseId: run.leaseId });
  });

  it('#6 queues are created with a long retention by default', async () => {
    const other = await startTestApi();
    try {
      const c = createHeadbenchClient({ url: other.url, token: other.token });
      await c.sweeps.create.mutate(spec('default retention'));
      expect((await other.services.runs.boss.getQueue(queueFor(undefined)))?.retentionSeconds).toBe(
        10 * 365 * 24 * 3600,
      );
    } finally {
      await other.dispose();
    }
  });

  it('#15 metric acks are durable: the ingest connections commit synchronously', async () => {
    const { rows } = await api.services.db.ingestPool.query('SHOW synchronous_commit');
    expect(rows[0].synchronous_commit).toBe('on');
  });
});
