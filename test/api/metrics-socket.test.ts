// Metric ingest over the /trainers socket (`metrics` with ack): stores like trainer.reportMetrics, is
// idempotent, refuses malformed batches and foreign or canceled runs with a clear error, fans out live.
import {
  connectLive,
  connectTrainerSocket,
  createHeadbenchClient,
  type HeadbenchClient,
  type LeasedRun,
  type LiveConnection,
  type LiveUpdate,
  type MetricsAck,
  MetricsRefusedError,
  reportMetricsOverSocket,
} from '@headbench/client';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IngestQueue } from '../../apps/api/src/services/metrics.ts';
import { startTestApi, type TestApi, waitFor } from './helpers.js';

const spec = (name: string, seeds: number[]) => ({
  name,
  datasets: ['generated:flowers17?perClass=4'],
  backbones: ['smallcnn' as const],
  heads: ['gap' as const],
  optimizers: ['adam' as const],
  seeds,
  epochs: 1,
  batchSize: 8,
  size: 32,
  lr: 0.001,
});

async function connected(s: Socket): Promise<Socket> {
  if (s.connected) return s;
  await new Promise<void>((ok, fail) => {
    s.once('connect', ok);
    s.once('connect_error', fail);
  });
  return s;
}

/** Raw emit (no client-side checks), as an arbitrary peer could send it. */
const emitRaw = (s: Socket, body: unknown) =>
  s.timeout(10_000).emitWithAck('metrics', body) as Promise<MetricsAck>;

describe('metrics over the trainer socket', () => {
  let api: TestApi;
  let admin: HeadbenchClient;
  let trainer: HeadbenchClient;
  let socket: Socket;
  let otherSocket: Socket;
  let live: LiveConnection;
  const updates: LiveUpdate[] = [];
  let runA: LeasedRun;
  let runB: LeasedRun;

  const stored = async (runId: string) =>
    (
      await api.services.db.pool.query<{
        name: string;
        step: number;
        epoch: number | null;
        value: number;
        t: number;
      }>(
        `SELECT name, step, epoch, value, (extract(epoch FROM time) * 1000)::float8 AS t
         FROM metrics WHERE run_id = $1 ORDER BY name, step`,
        [runId],
      )
    ).rows;
  const liveSteps = (runId: string) =>
    updates.flatMap((u) =>
      u.metrics.filter((m) => m.runId === runId).flatMap((m) => m.points.map((p) => p.step)),
    );

  beforeAll(async () => {
    api = await startTestApi({ liveIntervalMs: 50 });
    admin = createHeadbenchClient({ url: api.url, token: api.token });
    const token = (await admin.tokens.create.mutate({ name: 'sock', role: 'trainer', user: 'fleet' })).token;
    trainer = createHeadbenchClient({ url: api.url, token, batch: false });
    const { trainerId } = await trainer.trainer.register.mutate({
      name: 'sock-1',
      slots: 4,
      capabilities: { backend: 'cpu' },
    });
    const sweep = await admin.sweeps.create.mutate(spec('socket-ingest', [1, 2]));
    const leased = await waitFor(
      async () => {
        const r = (await trainer.trainer.lease.mutate({ trainerId, freeSlots: 2 })).runs;
        return r.length === 2 && r;
      },
      10_000,
      'two leases',
    );
    [runA, runB] = leased;
    socket = await connected(connectTrainerSocket({ url: api.url, token, trainerId }));

    const otherToken = (await admin.tokens.create.mutate({ name: 'other', role: 'trainer', user: 'fleet2' }))
      .token;
    const other = createHeadbenchClient({ url: api.url, token: otherToken, batch: false });
    const otherId = (
      await other.trainer.register.mutate({ name: 'sock-2', capabilities: { backend: 'cpu' } })
    ).trainerId;
    otherSocket = await connected(
      connectTrainerSocket({ url: api.url, token: otherToken, trainerId: otherId }),
    );

    live = connectLive({ url: api.url, token: api.token });
    await live.subscribe([`sweep:${sweep.id}`]);
    live.onUpdate((u) => updates.push(u));
  });
  afterAll(async () => {
    socket?.close();
    otherSocket?.close();
    live?.close();
    await api?.dispose();
  });

  it('stores the points, answers like reportMetrics and sends them to dashboards', async () => {
    const out = await reportMetricsOverSocket(socket, {
      runId: runA.runId,
      leaseId: runA.leaseId,
      points: [
        { name: 'loss', step: 0, epoch: 0, value: 2.5, time: 1_700_000_000_123 },
        { name: 'loss', step: 1, epoch: 0, value: 2.25 },
        { name: 'batch/acc', step: 0, value: 0.125 },
      ],
    });
    expect(out).toEqual({ inserted: 3, duplicates: 0, cancel: false });
    const rows = await stored(runA.runId);
    expect(rows.map((r) => [r.name, r.step, r.epoch, r.value])).toEqual([
      ['batch/acc', 0, null, 0.125],
      ['loss', 0, 0, 2.5],
      ['loss', 1, 0, 2.25],
    ]);
    expect(rows[1].t).toBe(1_700_000_000_123); // the trainer's time, to the millisecond
    expect(Math.abs(rows[2].t - Date.now())).toBeLessThan(60_000); // no time: the server's
    await waitFor(() => liveSteps(runA.runId).length === 3, 5000, 'live points');
  });

  it('a resent batch stores nothing twice; an overlapping one stores and shows only the new points', async () => {
    const batch = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => ({
        name: 'val/loss',
        step: from + i,
        value: from + i,
      }));
    const send = (r: LeasedRun, from: number, to: number) =>
      reportMetricsOverSocket(socket, { runId: r.runId, leaseId: r.leaseId, points: batch(from, to) });
    expect(await send(runB, 0, 9)).toEqual({ inserted: 10, duplicates: 0, cancel: false });
    expect(await send(runB, 0, 9)).toEqual({ inserted: 0, duplicates: 10, cancel: false });
    // Concurrent batches of two runs, partly overlapping what is stored and each other (one INSERT).
    const [b, a, b2] = await Promise.all([send(runB, 5, 14), send(runA, 0, 4), send(runB, 12, 16)]);
    expect(a).toEqual({ inserted: 5, duplicates: 0, cancel: false });
    expect(b.inserted + b.duplicates).toBe(10);
    expect(b2.inserted + b2.duplicates).toBe(5);
    expect(b.inserted + b2.inserted).toBe(7); // steps 10-16, each counted for one batch only
    const rows = (await stored(runB.runId)).filter((r) => r.name === 'val/loss');
    expect(rows.map((r) => r.step)).toEqual(Array.from({ length: 17 }, (_, i) => i));
    // The tRPC route sees the same rows: a resend over HTTP is a duplicate too.
    const viaHttp = await trainer.trainer.reportMetrics.mutate({
      runId: runB.runId,
      leaseId: runB.leaseId,
      points: batch(16, 17),
    });
    expect(viaHttp).toEqual({ inserted: 1, duplicates: 1, cancel: false });
    await waitFor(() => liveSteps(runB.runId).length === 18, 5000, 'each new point once on the live channel');
    await new Promise((r) => setTimeout(r, 200));
    expect(liveSteps(runB.runId).sort((x, y) => x - y)).toEqual(Array.from({ length: 18 }, (_, i) => i));
  });

  it('coalesced batches: each new point is reported once, to the first batch carrying it', async () => {
    const q = new IngestQueue(api.services.db.pool, 1); // one statement at a time: the rest coalesce
    const pts = (name: string, steps: number[]) => steps.map((step) => ({ name, step, value: step }));
    const first = q.insert(runB.runId, pts('coalesce', [0, 1]), Date.now());
    const [x, y, z] = await Promise.all([
      q.insert(runB.runId, pts('coalesce', [1, 2, 3]), Date.now()), // these three leave together
      q.insert(runB.runId.toUpperCase(), pts('coalesce', [3, 4]), Date.now()),
      q.insert(runA.runId, pts('coalesce', [0, 1, 0]), Date.now()),
    ]);
    expect((await first).map((p) => p.step)).toEqual([0, 1]);
    expect(x.map((p) => p.step)).toEqual([2, 3]);
    expect(y.map((p) => p.step)).toEqual([4]);
    expect(z.map((p) => p.step)).toEqual([0, 1]);
    expect(z[0]).toMatchObject({ name: 'coalesce', step: 0, epoch: null, value: 0 });
    const rows = (await stored(runB.runId)).filter((r) => r.name === 'coalesce');
    expect(rows.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
  });

  it('refuses malformed batches with an error naming the problem, and stores nothing', async () => {
    const ids = { runId: runA.runId, leaseId: runA.leaseId };
    const ok = { name: 'x', step: 100, value: 1 };
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ ...ok, step: 1000 + i }));
    const bad57 = many(100);
    bad57[57] = { ...ok, step: 57.5 };
    const cases: [unknown, RegExp][] = [
      ['points', /expected an object \{ runId, leaseId, points \}, got "points"/],
      [null, /expected an object.*got null/],
      [{ ...ids, runId: 'run-1' }, /^runId: expected a uuid, got "run-1"/],
      [{ runId: ids.runId, points: [ok] }, /^leaseId: expected a uuid, got missing/],
      [{ ...ids, points: { 0: ok } }, /^points: expected an array, got object/],
      [{ ...ids, points: [] }, /^points: expected 1 to 5000 points, got 0/],
      [{ ...ids, points: many(5001) }, /^points: expected 1 to 5000 points, got 5001/],
      [{ ...ids, points: [ok, 'loss'] }, /^points\[1\]: expected an object/],
      [{ ...ids, points: [{ ...ok, name: '' }] }, /^points\[0\]\.name: expected a string of 1 to 64/],
      [
        { ...ids, points: [{ ...ok, name: 'x'.repeat(65) }] },
        /^points\[0\]\.name: expected a string of 1 to 64/,
      ],
      [{ ...ids, points: [{ ...ok, name: 'val loss' }] }, /^points\[0\]\.name: letters, digits.*"val loss"/],
      [{ ...ids, points: [{ ...ok, step: -1 }] }, /^points\[0\]\.step: expected an integer from 0 .* got -1/],
      [{ ...ids, points: [{ ...ok, step: 2 ** 31 }] }, /^points\[0\]\.step: .* got 2147483648/],
      [{ ...ids, points: bad57 }, /^points\[57\]\.step: expected an integer .* got 57\.5/],
      [{ ...ids, points: [{ ...ok, epoch: '1' }] }, /^points\[0\]\.epoch: .* got "1"/],
      [{ ...ids, points: [{ ...ok, epoch: null }] }, /^points\[0\]\.epoch: .* got null/],
      [
        { ...ids, points: [{ ...ok, value: Number.NaN }] },
        /^points\[0\]\.value: expected a finite number, got null/,
      ],
      [
        { ...ids, points: [{ ...ok, value: '0.5' }] },
        /^points\[0\]\.value: expected a finite number, got "0.5"/,
      ],
      [
        { ...ids, points: [{ name: 'x', step: 1 }] },
        /^points\[0\]\.value: expected a finite number, got missing/,
      ],
      [{ ...ids, points: [{ ...ok, time: 0 }] }, /^points\[0\]\.time: expected a positive integer/],
      [{ ...ids, points: [{ ...ok, time: 1.5 }] }, /^points\[0\]\.time: .* got 1\.5/],
    ];
    const before = (await stored(runA.runId)).length;
    for (const [body, error] of cases) {
      const ack = await emitRaw(socket, body);
      expect(ack.ok, JSON.stringify(body).slice(0, 80)).toBe(false);
      if (ack.ok) continue;
      expect(ack).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
      expect(ack.error).toMatch(error);
    }
    expect((await stored(runA.runId)).length).toBe(before);
    // The client helper turns a refusal into an error carrying the status.
    const err = await reportMetricsOverSocket(socket, { ...ids, points: [{ ...ok, name: 'a b' }] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(MetricsRefusedError);
    expect(err).toMatchObject({ status: 400, message: expect.stringMatching(/points\[0\]\.name/) });
    // The connection is still good afterwards.
    expect(await emitRaw(socket, { ...ids, points: [ok] })).toEqual({
      ok: true,
      inserted: 1,
      duplicates: 0,
      cancel: false,
    });
  });

  it('refuses a trainer that does not hold the run, or a stale lease', async () => {
    const points = [{ name: 'intruder', step: 0, value: 1 }];
    const foreign = await emitRaw(otherSocket, { runId: runA.runId, leaseId: runA.leaseId, points });
    expect(foreign).toMatchObject({ ok: false, status: 403, error: 'this trainer does not hold that run' });
    const stale = await emitRaw(socket, { runId: runA.runId, leaseId: runB.leaseId, points });
    expect(stale).toMatchObject({ ok: false, status: 403, error: expect.stringMatching(/lease lost/) });
    expect((await stored(runA.runId)).filter((r) => r.name === 'intruder')).toEqual([]);
  });

  it('a canceled run is answered as canceled, and nothing more is stored', async () => {
    const points = [{ name: 'after', step: 0, value: 1 }];
    expect(await emitRaw(socket, { runId: runA.runId, leaseId: runA.leaseId, points })).toMatchObject({
      ok: true,
      inserted: 1,
    });
    await admin.runs.cancel.mutate({ id: runA.runId });
    const ack = await emitRaw(socket, {
      runId: runA.runId,
      leaseId: runA.leaseId,
      points: [{ name: 'after', step: 1, value: 1 }],
    });
    expect(ack).toEqual({
      ok: false,
      status: 403,
      code: 'FORBIDDEN',
      error: 'this trainer no longer holds that run: run was canceled',
    });
    expect((await stored(runA.runId)).filter((r) => r.name === 'after').map((r) => r.step)).toEqual([0]);
  });

  it('a revoked token is refused on an open socket', async () => {
    const tokens = await admin.tokens.list.query();
    const sock = tokens.find((t) => t.name === 'sock');
    expect(sock).toBeDefined();
    await admin.tokens.revoke.mutate({ id: sock!.id });
    const ack = await emitRaw(socket, {
      runId: runB.runId,
      leaseId: runB.leaseId,
      points: [{ name: 'revoked', step: 0, value: 1 }],
    });
    expect(ack).toMatchObject({ ok: false, status: 401, error: 'token revoked or invalid' });
    expect((await stored(runB.runId)).filter((r) => r.name === 'revoked')).toEqual([]);
  });
});
