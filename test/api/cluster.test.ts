// Two API instances on one Postgres, on each socket.io adapter (Postgres NOTIFY; Redis): a dashboard on B
// gets what a trainer reports to A, a cancel sent to B reaches the trainer's socket on A, a token revoked
// through B is refused by A within 2 s, only one instance reaps and no run is reaped twice, and when the
// leader goes the other takes over.
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApi } from '@headbench/api';
import {
  connectLive,
  connectTrainerSocket,
  createHeadbenchClient,
  downloadArtifact,
  type HeadbenchClient,
  type LeasedRun,
  type LiveConnection,
  type LiveUpdate,
  uploadArtifact,
  uploadDataset,
} from '@headbench/client';
import { readEnv } from '@headbench/spec';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_CACHE_MAX, TokenAuth } from '../../apps/api/src/auth.ts';
import type { RunService } from '../../apps/api/src/services/runs.ts';
import { freshDatabase } from '../../apps/api/test/helpers.ts';
import { startTestApi, type TestApi, waitFor } from './helpers.js';

const REDIS = readEnv(process.env).HEADBENCH_TEST_REDIS;

const spec = (name: string, seeds: number[]) => ({
  name,
  datasets: ['generated:flowers17?perClass=4'],
  backbones: ['smallcnn' as const],
  heads: ['gap' as const],
  optimizers: ['adam' as const],
  seeds,
  epochs: 3,
  batchSize: 8,
  size: 32,
  lr: 0.001,
});

function connected(s: Socket): Promise<Socket> {
  if (s.connected) return Promise.resolve(s);
  return new Promise((ok, fail) => {
    s.once('connect', () => ok(s));
    s.once('connect_error', fail);
  });
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

// Postgres adapter with large-object storage (each instance its own storage folder: nothing shared but the
// database); Redis adapter with the local store on one shared folder (the shared-volume deployment).
describe.each([
  ['postgres', undefined, 'postgres'],
  ['redis', REDIS, 'local'],
] as const)('two API instances on the %s adapter', (transport, redisUrl, storage) => {
  let a: TestApi;
  let b: Awaited<ReturnType<typeof createApi>>;
  let adminB: HeadbenchClient;
  let trainerToken: string;
  let trainerA: HeadbenchClient;
  let trainerId: string;
  let socketA: Socket;
  let liveB: LiveConnection;
  const updates: LiveUpdate[] = [];

  beforeAll(async () => {
    // Short leases so the reaper test is quick; no grace after start.
    a = await startTestApi({ redisUrl, storage, leaseSeconds: 1, reaperGraceSeconds: 0, liveIntervalMs: 20 });
    b = await createApi({
      storage,
      storageDir: storage === 'postgres' ? join(a.home, 'b-store') : undefined,
      databaseUrl: a.databaseUrl,
      home: a.home,
      port: 0,
      quiet: true,
      redisUrl,
      leaseSeconds: 1,
      reaperGraceSeconds: 0,
      liveIntervalMs: 20,
    });
    expect(a.services.cluster.transport).toBe(transport);
    adminB = createHeadbenchClient({ url: b.url, token: a.token });
    trainerToken = (await adminB.tokens.create.mutate({ name: 'tA', role: 'trainer', user: 'fleet' })).token;
    trainerA = createHeadbenchClient({ url: a.url, token: trainerToken, batch: false });
    trainerId = (
      await trainerA.trainer.register.mutate({ name: 'box-a', slots: 4, capabilities: { backend: 'cpu' } })
    ).trainerId;
    socketA = await connected(connectTrainerSocket({ url: a.url, token: trainerToken, trainerId }));
    liveB = connectLive({ url: b.url, token: a.token });
    liveB.onUpdate((u) => updates.push(u));
  });
  afterAll(async () => {
    socketA?.close();
    liveB?.close();
    await b?.close();
    await a?.dispose();
  });

  /** Leases the new sweep's runs on A; runs of earlier tests that the 1 s leases sent back are canceled. */
  async function leaseFromA(seeds: number[]): Promise<LeasedRun[]> {
    const sweep = await adminB.sweeps.create.mutate(spec(`${transport}-${seeds.join('-')}`, seeds));
    const runs: LeasedRun[] = [];
    await waitFor(
      async () => {
        for (const r of (await trainerA.trainer.lease.mutate({ trainerId, freeSlots: seeds.length })).runs) {
          if (r.sweepId === sweep.id) runs.push(r);
          else await adminB.runs.cancel.mutate({ id: r.runId });
        }
        return runs.length === seeds.length;
      },
      10_000,
      'leases on A',
    );
    return runs;
  }

  it('a dashboard on B receives every point a trainer reports to A', async () => {
    const [run] = await leaseFromA([1]);
    await liveB.subscribe([`run:${run.runId}`]);
    for (let epoch = 1; epoch <= 3; epoch++)
      await trainerA.trainer.reportMetrics.mutate({
        runId: run.runId,
        leaseId: run.leaseId,
        points: [{ name: 'val_accuracy', step: epoch, epoch, value: epoch / 10 }],
      });
    const steps = () =>
      updates.flatMap((u) =>
        u.metrics.filter((m) => m.runId === run.runId).flatMap((m) => m.points.map((p) => p.step)),
      );
    await waitFor(() => steps().length === 3, 5000, 'three epochs live on B');
    expect(steps()).toEqual([1, 2, 3]);
    // A batch too large for one NOTIFY (8000 bytes) crosses too (the Postgres adapter's attachments table).
    const many = Array.from({ length: 1000 }, (_, i) => ({
      name: 'batch/loss',
      step: 100 + i,
      value: i / 1000,
    }));
    await trainerA.trainer.reportMetrics.mutate({ runId: run.runId, leaseId: run.leaseId, points: many });
    await waitFor(() => steps().length === 1003, 5000, 'the large batch live on B');
  });

  it('an artifact and a dataset stored through A stream back through B, with their sha256', async () => {
    const [run] = await leaseFromA([4]);
    const bytes = new Uint8Array(randomBytes(1536 * 1024)); // over one 1 MiB large-object chunk
    const art = await uploadArtifact({
      url: a.url,
      token: trainerToken,
      runId: run.runId,
      leaseId: run.leaseId,
      name: 'checkpoint.tar',
      kind: 'checkpoint',
      epoch: 1,
      body: bytes,
    });
    expect(art.sha256).toBe(sha(bytes));
    const back = await downloadArtifact({ url: b.url, token: trainerToken, path: art.downloadPath });
    expect(sha(back)).toBe(art.sha256);

    const archive = new Uint8Array(randomBytes(4096));
    const ds = await uploadDataset({
      url: a.url,
      token: a.token,
      name: `set-${transport}`,
      format: 'zip',
      body: archive,
    });
    const res = await fetch(`${b.url}${ds.archive.downloadPath}`, {
      headers: { authorization: `Bearer ${a.token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-sha256')).toBe(sha(archive));
    expect(sha(new Uint8Array(await res.arrayBuffer()))).toBe(sha(archive));
    const stored = await a.services.db.pool.query('SELECT uri FROM artifacts WHERE id = $1', [art.id]);
    expect(stored.rows[0].uri).toMatch(storage === 'postgres' ? /^pg-lo:\d+$/ : /^file:/);
  });

  it('a cancel sent to B reaches the trainer connected to A, and A refuses its metrics', async () => {
    const [run] = await leaseFromA([2]);
    const pushed = new Promise<{ runId: string; reason: string }>((ok) =>
      socketA.on('cancel', (m: { runId: string; reason: string }) => m.runId === run.runId && ok(m)),
    );
    await adminB.runs.cancel.mutate({ id: run.runId });
    expect((await pushed).runId).toBe(run.runId);
    // A's per-run lease cache is 1 s: within the 2 s bound A refuses points for the run.
    const refused = await waitFor(
      () =>
        trainerA.trainer.reportMetrics
          .mutate({ runId: run.runId, leaseId: run.leaseId, points: [{ name: 'loss', step: 9, value: 1 }] })
          .then(
            () => false,
            (e: Error) => e.message,
          ),
      2000,
      'A to refuse metrics of the canceled run',
    );
    expect(refused).toMatch(/no longer holds that run: run was canceled/);
  });

  it('a token revoked through B is refused by A within 2 s', async () => {
    const { id, token } = await adminB.tokens.create.mutate({ name: 'short', role: 'member', user: 'x' });
    const member = createHeadbenchClient({ url: a.url, token });
    await member.runs.list.query({ limit: 1 }); // A caches the token as valid
    await adminB.tokens.revoke.mutate({ id });
    await waitFor(
      () =>
        member.runs.list.query({ limit: 1 }).then(
          () => false,
          (e: { data?: { httpStatus?: number } }) => e.data?.httpStatus === 401,
        ),
      2000,
      'A to refuse the revoked token',
    );
  });

  it('only the leader reaps, and a run whose trainer vanished is requeued once', async () => {
    const leaders = [a, b].filter((x) => x.services.cluster.leader.isLeader);
    expect(leaders).toHaveLength(1);
    const [run] = await leaseFromA([3]);
    // No heartbeats: the 1 s lease expires and the leader requeues the run.
    const requeued = await waitFor(
      async () => {
        const { rows } = await a.services.db.pool.query(`SELECT status, attempt FROM runs WHERE id = $1`, [
          run.runId,
        ]);
        return rows[0].status === 'queued' && rows[0];
      },
      10_000,
      'the reaper',
    );
    expect(requeued.attempt).toBe(2);
    const { rows } = await a.services.db.pool.query(
      `SELECT count(*)::int AS n FROM run_events WHERE run_id = $1 AND type = 'lease_expired'`,
      [run.runId],
    );
    expect(rows[0].n).toBe(1);
    // Two reapers racing over the same expired lease (leader or not) still requeue it once: each run is
    // re-checked under a row lock.
    // Leased again and lost again: written as the lease would leave it, already expired.
    await a.services.db.pool.query(
      `UPDATE runs SET status = 'running', trainer_id = $2, lease_id = gen_random_uuid(),
         lease_expires_at = now() - interval '1 s' WHERE id = $1`,
      [run.runId, trainerId],
    );
    const reaped = await Promise.all([a, b, a, b].map((x) => unledReaper(x.services.runs).reapExpired()));
    expect(reaped.reduce((s, n) => s + n, 0)).toBe(1);
    const events = await a.services.db.pool.query(
      `SELECT attempt FROM run_events WHERE run_id = $1 AND type = 'lease_expired' ORDER BY id`,
      [run.runId],
    );
    expect(events.rows.map((e) => e.attempt)).toEqual([1, 2]);
  });

  it('when the leader closes, the other instance takes over', async () => {
    if (transport === 'redis') return; // the leader lives in Postgres: one adapter shows it
    const leader = a.services.cluster.leader.isLeader ? a.services.cluster : b.services.cluster;
    const other = leader === a.services.cluster ? b.services.cluster : a.services.cluster;
    await leader.leader.close();
    await waitFor(() => other.leader.isLeader, 5000, 'the other instance to lead');
  });
});

/** The instance's reaper as if it led: same database, queue and hub, no leader check, not busy. */
function unledReaper(runs: RunService): RunService {
  const r = Object.create(runs) as RunService;
  Object.assign(r, { reaping: false, opts: { ...runs.opts, isLeader: undefined } });
  return r;
}

describe('cluster settings', () => {
  it('stops start-up on an unreachable REDIS_URL, naming it without its password', async () => {
    const db = await freshDatabase();
    try {
      const err = await createApi({
        databaseUrl: db.url,
        home: join(tmpdir(), 'headbench-no-redis'),
        port: 0,
        quiet: true,
        redisUrl: 'redis://:hunter2@127.0.0.1:1',
      }).catch((e: Error) => e);
      expect(String(err)).toMatch(/REDIS_URL: cannot reach Redis at 127\.0\.0\.1:1/);
      expect(String(err)).not.toContain('hunter2');
    } finally {
      await db.drop();
    }
  });
});

describe('token cache bound', () => {
  it('keeps at most TOKEN_CACHE_MAX.invalid made-up tokens', async () => {
    const api = await startTestApi();
    try {
      const auth = new TokenAuth(api.services.db.pool, 60_000, { valid: 10, invalid: 50 });
      for (let i = 0; i < 200; i++) expect(await auth.verify(`hb_made_up_${i}`)).toBeNull();
      expect(auth.cached).toEqual({ valid: 0, invalid: 50 });
      expect(await auth.verify(api.token)).toMatchObject({ role: 'admin' });
      expect(auth.cached.valid).toBe(1);
      expect(TOKEN_CACHE_MAX.invalid).toBeLessThanOrEqual(TOKEN_CACHE_MAX.valid);
    } finally {
      await api.dispose();
    }
  });
});
