// The trainer's link to several API instances: a call that gets no answer moves it to the next instance;
// an answer, even a refusal, never does (that instance is up and its "no" stands).
import { createHeadbenchClient } from '@headbench/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiLink } from '../../apps/trainer/src/worker/api.ts';
import { startTestApi, type TestApi } from '../api/helpers.js';
import { freePort } from './harness.js';

describe('ApiLink with several instances', () => {
  let api: TestApi;
  let dead: string;
  beforeAll(async () => {
    api = await startTestApi();
    dead = `http://127.0.0.1:${await freePort()}`; // nothing listens there
  });
  afterAll(async () => {
    await api?.dispose();
  });

  it('moves on from an instance that does not answer, once, and tells its listeners', async () => {
    const link = new ApiLink([dead, api.url], api.token);
    const moves: string[] = [];
    link.onSwitch((u) => moves.push(u));
    const me = await link.retry('whoami', () => link.client.whoami.query());
    expect(me.role).toBe('admin');
    expect(link.url).toBe(api.url);
    expect(moves).toEqual([api.url]);
    // A late failure of a call that went to the dead instance does not move the link off the live one.
    expect(link.noteFailure(new Error('fetch failed'), dead)).toBe(false);
    expect(link.url).toBe(api.url);
  });

  it('moves a metric batch that got no answer (tRPC) to the next instance', async () => {
    const admin = createHeadbenchClient({ url: api.url, token: api.token });
    const token = (await admin.tokens.create.mutate({ name: 'link', role: 'trainer', user: 'link' })).token;
    const link = new ApiLink([dead, api.url], token);
    const { trainerId } = await link.retry('register', () =>
      link.client.trainer.register.mutate({ name: 'link-1', capabilities: { backend: 'cpu' } }),
    );
    await admin.sweeps.create.mutate({
      name: 'link',
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
    const [run] = (await link.client.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs;
    const again = new ApiLink([dead, api.url], token);
    const input = { runId: run.runId, leaseId: run.leaseId, points: [{ name: 'loss', step: 1, value: 1 }] };
    await expect(again.reportMetrics(input)).rejects.toThrow();
    expect(again.url).toBe(api.url);
    expect(await again.reportMetrics(input)).toMatchObject({ inserted: 1 });
  });

  it('stays on an instance that answers, even with a refusal', async () => {
    const link = new ApiLink([api.url, dead], 'hb_not-a-token');
    const err = await link.client.whoami.query().catch((e) => e);
    expect(err.data?.httpStatus).toBe(401);
    expect(link.noteFailure(err, api.url)).toBe(false);
    expect(link.url).toBe(api.url);
  });

  it('with one URL, waits for it instead of moving', async () => {
    const link = new ApiLink(dead, api.token);
    const err = await link.client.whoami.query().catch((e) => e);
    expect(link.noteFailure(err, dead)).toBe(false);
    expect(link.urls).toEqual([dead]);
  });
});
