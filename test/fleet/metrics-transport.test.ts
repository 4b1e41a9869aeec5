// The trainer worker's metric path (ApiLink.reportMetrics, used by every run's outbox): over the
// /trainers socket while it is connected, over tRPC when it is not; both idempotent on the same rows, and
// refusals classified as the outbox expects (403: drop the run; 400: skip the batch).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectTrainerSocket, type LeasedRun } from '@headbench/client';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiLink, classify } from '../../apps/trainer/src/worker/api.js';
import { type ApiServer, client, freshDatabase, range, startApi, storedPoints, waitFor } from './harness.js';

describe('trainer metrics transport', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let home: string;
  let api: ApiServer;
  let link: ApiLink;
  let socket: Socket;
  let run: LeasedRun;

  beforeAll(async () => {
    db = await freshDatabase();
    home = await mkdtemp(join(tmpdir(), 'headbench-transport-'));
    api = await startApi({ databaseUrl: db.url, home, leaseSeconds: 30 });
    const admin = client(api.url, api.adminToken);
    const token = (await admin.tokens.create.mutate({ name: 'transport', role: 'trainer' })).token;
    link = new ApiLink(api.url, token);
    const { trainerId } = await link.client.trainer.register.mutate({
      name: 'transport',
      capabilities: { backend: 'cpu' },
    });
    await admin.sweeps.create.mutate({
      name: 'transport',
      datasets: ['generated:flowers17?perClass=4'],
      backbones: ['smallcnn'],
      heads: ['gap'],
      optimizers: ['adam'],
      seeds: [1],
      epochs: 1,
      batchSize: 8,
      size: 32,
      lr: 0.001,
    });
    run = await waitFor(
      async () => (await link.client.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs[0],
      10_000,
      'a lease',
    );
    socket = connectTrainerSocket({ url: api.url, token, trainerId });
    link.socket = socket;
    await waitFor(() => socket.connected, 10_000, 'the trainer socket');
  });
  afterAll(async () => {
    socket?.close();
    await api?.proc.stop();
    await db?.drop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  const points = (from: number, to: number) =>
    range(from, to).map((step) => ({ name: 'loss', step, value: step }));

  it('sends over the socket while connected, over tRPC otherwise, onto the same rows', async () => {
    /** Sends steps from..to; checks what was stored new and which transport carried each batch so far. */
    const send = async (
      from: number,
      to: number,
      inserted: number,
      via: { socket: number; trpc: number },
    ) => {
      const out = await link.reportMetrics({
        runId: run.runId,
        leaseId: run.leaseId,
        points: points(from, to),
      });
      expect(out).toEqual({ inserted, duplicates: to - from + 1 - inserted, cancel: false });
      expect(link.metricsVia).toEqual(via);
    };
    await send(0, 9, 10, { socket: 1, trpc: 0 });
    socket.disconnect();
    // The ack of this resend "was lost": over tRPC now, and nothing is stored twice.
    await send(5, 14, 5, { socket: 1, trpc: 1 });
    socket.connect();
    await waitFor(() => socket.connected, 10_000, 'reconnect');
    await send(10, 19, 5, { socket: 2, trpc: 1 });
    expect((await storedPoints(db.url, run.runId)).loss.map((p) => p.step)).toEqual(range(0, 19));
  });

  it('socket refusals classify like tRPC ones: 400 skips the batch, 403 drops the run', async () => {
    const bad = await link
      .reportMetrics({
        runId: run.runId,
        leaseId: run.leaseId,
        points: [{ name: 'loss', step: -1, value: 1 }],
      })
      .catch((e: unknown) => e);
    expect(classify(bad)).toMatchObject({ transient: false, leaseLost: false, status: 400 });
    expect(classify(bad).message).toMatch(/points\[0\]\.step/);
    const stale = await link
      .reportMetrics({
        runId: run.runId,
        leaseId: '00000000-0000-4000-8000-000000000000',
        points: points(20, 20),
      })
      .catch((e: unknown) => e);
    expect(classify(stale)).toMatchObject({ transient: false, leaseLost: true, status: 403 });
    expect(link.metricsVia.trpc).toBe(1); // refusals came over the socket, no fallback
  });
});
