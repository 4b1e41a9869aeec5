// A member's sweep against a real trainer, read as an attacker would write it: model folders whose
// manifests point out of them, datasets outside the operator's folders, decompression bombs, URLs on hosts
// the operator did not allow, an error text Postgres cannot store, a full disk, tokens in argv, a trainer
// leasing more than its slots. Real API process, real Postgres, real `headbench-trainer` process.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HeadbenchClient, uploadDataset } from '@headbench/client';
import { openDataset } from '@headbench/core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDir } from '../../apps/trainer/src/worker/tar.js';
import { tarOf, tgzBomb, zipBomb } from '../trainer/archives.js';
import {
  type ApiServer,
  client,
  freshDatabase,
  Proc,
  ROOT,
  startApi,
  startTrainer,
  waitFor,
} from './harness.js';

const TINY = 'generated:flowers3?perClass=12&size=32';
const MiB = 1024 * 1024;

const spec = (name: string, over: Record<string, unknown> = {}) => ({
  name,
  datasets: [TINY],
  backbones: ['smallcnn' as const],
  heads: ['gap' as const],
  optimizers: ['adam' as const],
  seeds: [0],
  epochs: 1,
  batchSize: 8,
  size: 32,
  lr: 0.001,
  trainable: 'all' as const,
  camSamples: 0,
  shifts: [0],
  ...over,
});

describe('trainer security', () => {
  let tmp: string;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let api: ApiServer;
  let admin: HeadbenchClient;
  let trainerToken: string;
  let trainer: Proc;
  let dataRoot: string;
  let trainerHome: string;
  let web: Server;
  let webPort: number;
  const webHits: string[] = [];

  const run = (id: string) => admin.runs.get.query({ id });
  /** The run once it reached `status` (any other end is an error naming it). */
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
      300,
    );
  /** Each run of a fresh sweep failed on its first attempt (bad input: not retried). */
  const failedRuns = async (name: string, over: Record<string, unknown>) => {
    const sweep = await admin.sweeps.create.mutate(spec(name, over));
    const runs = await Promise.all(sweep.runIds.map((id) => waitRun(id, 'failed', 90_000)));
    for (const r of runs) expect(r.attempt, r.error ?? '').toBe(1);
    return runs;
  };
  /** Nothing in text that goes to the API names a folder of the trainer's machine. */
  const noTrainerPaths = (text: string | null) => {
    expect(text).not.toContain(tmp);
    expect(text).not.toContain(ROOT);
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'headbench-sec-'));
    dataRoot = join(tmp, 'data');
    trainerHome = join(tmp, 't1-home');
    await mkdir(dataRoot, { recursive: true });
    // Another web server on this machine (another port): the SSRF target.
    web = createServer((req, res) => {
      webHits.push(req.url ?? '');
      if (req.url === '/redirect.zip') {
        res.writeHead(302, { location: `${api.url}/datasets/anything` }).end();
      } else if (req.url === '/big.zip') {
        // Chunked, without a length to refuse it by: the cap must hold while streaming.
        res.writeHead(200, { 'content-type': 'application/zip' });
        res.write(Buffer.alloc(MiB, 7));
        res.end(Buffer.alloc(MiB, 7));
      } else res.writeHead(404).end('no such file: /srv/secret/location');
    });
    await new Promise<void>((r) => web.listen(0, r));
    webPort = (web.address() as AddressInfo).port;
    db = await freshDatabase();
    api = await startApi({ databaseUrl: db.url, home: join(tmp, 'api'), leaseSeconds: 20 });
    admin = client(api.url, api.adminToken);
    trainerToken = (await admin.tokens.create.mutate({ name: 'sec', role: 'trainer', user: 'sec' })).token;
    await writeFile(tokenFile(), `${trainerToken}\n`, { mode: 0o600 });
    trainer = launchTrainer();
    await trainer.waitForLine(/registered as/, 90_000);
  });

  const tokenFile = () => join(tmp, 'trainer-token');
  const launchTrainer = () =>
    startTrainer({
      url: api.url,
      token: '',
      name: 't1',
      workDir: join(tmp, 't1'),
      home: trainerHome,
      dataRoots: [dataRoot],
      allowHosts: [`localhost:${webPort}`],
      // The token from a 0600 file; downloads capped at 1 MiB for the size test.
      env: { HEADBENCH_TOKEN_FILE: tokenFile(), HEADBENCH_MAX_DOWNLOAD_BYTES: String(MiB) },
    });

  afterAll(async () => {
    await trainer?.stop('SIGKILL');
    await api?.proc.stop('SIGTERM', 15_000);
    await db?.drop().catch(() => {});
    await new Promise((r) => web?.close(r));
    await rm(tmp, { recursive: true, force: true });
  });

  it('path-escape model: a manifest naming ../../../../etc/passwd fails the run without reading the file', async () => {
    const model = join(dataRoot, 'evil-model');
    await mkdir(model, { recursive: true });
    await writeFile(
      join(model, 'model.json'),
      JSON.stringify({
        modelTopology: {},
        weightsManifest: [
          { paths: ['../../../../etc/passwd'], weights: [{ name: 'x', shape: [1], dtype: 'float32' }] },
        ],
      }),
    );
    const [r] = await failedRuns('path escape', { weights: [model] });
    expect(r.error).toMatch(/weightsManifest path '..\/..\/..\/..\/etc\/passwd' leaves the model folder/);
    expect(r.error).not.toMatch(/bytes|root:/);
    noTrainerPaths(r.error);
  });

  it('path escape: datasets and weights outside the operator-allowed roots are refused, unread', async () => {
    const runs = await failedRuns('outside roots', { datasets: ['/home', `idx:/etc/passwd,/etc/hostname`] });
    for (const r of runs) expect(r.error).toMatch(/is outside the folders this trainer may read/);
    // The API's home (its admin token) is not the trainer's to read, though it is on the same machine.
    const [w] = await failedRuns('weights outside roots', { weights: [join(api.home, 'admin-token')] });
    expect(w.error).toMatch(/weights '.*' is outside the folders this trainer may read/);
    noTrainerPaths(w.error);
  });

  it('zip bomb and tgz bomb datasets fail as bad input (not retried) and the trainer stays up', async () => {
    for (const [name, format, body] of [
      ['zip-bomb', 'zip', zipBomb(64 * MiB)],
      ['tgz-bomb', 'tgz', await tgzBomb(64 * MiB)],
    ] as const) {
      expect(body.length).toBeLessThan(256 * 1024);
      await uploadDataset({ url: api.url, token: api.adminToken, name, format, body });
    }
    const runs = await failedRuns('bombs', { datasets: ['dataset:zip-bomb', 'dataset:tgz-bomb'] });
    for (const r of runs)
      expect(r.error).toMatch(/archive unpacks to more than 100× its size \(a decompression bomb\?\)/);
    expect(trainer.child.exitCode).toBeNull();
  });

  it('SSRF: hosts the operator did not allow are never fetched; redirects, oversized bodies and HTTP errors fail clearly', async () => {
    const [other, redirect, big, missing] = await failedRuns('ssrf', {
      datasets: [
        `http://127.0.0.1:${webPort}/data.zip`,
        `http://localhost:${webPort}/redirect.zip`,
        `http://localhost:${webPort}/big.zip`,
        `http://localhost:${webPort}/missing.zip`,
      ],
    });
    expect(other.error).toMatch(
      new RegExp(`host 127\\.0\\.0\\.1:${webPort} is not one this trainer may fetch from .*--allow-host`),
    );
    expect(webHits).not.toContain('/data.zip');
    expect(redirect.error).toMatch(/redirected to another host; refused/);
    expect(big.error).toMatch(/larger than 1048576 bytes \(HEADBENCH_MAX_DOWNLOAD_BYTES\); refused/);
    expect(missing.error).toMatch(/the server at localhost:\d+ refused the download/);
    // The other server's answer (status, body) stays on the trainer.
    expect(missing.error).not.toMatch(/404|secret/);
    const [weights] = await failedRuns('ssrf weights', { weights: [`http://127.0.0.1:${webPort}/model`] });
    expect(weights.error).toMatch(/weights: host 127\.0\.0\.1:\d+ is not one this trainer may fetch from/);
    expect(webHits.filter((h) => !['/redirect.zip', '/big.zip', '/missing.zip'].includes(h))).toEqual([]);
  });

  it('NUL in an error message: the run ends failed with a readable error instead of running for ever', async () => {
    const model = join(dataRoot, 'nul-model');
    await mkdir(model, { recursive: true });
    await writeFile(join(model, 'model.json'), '{"modelTopology": \u0000}');
    const [r] = await failedRuns('nul', { weights: [model] });
    expect(r.error).toMatch(/model\.json is not valid JSON/);
    expect(r.error).toContain('\\x00');
    expect(r.error).not.toContain('\u0000');
    noTrainerPaths(r.error);
  });

  it('disk full (ENOSPC) while fetching a dataset: the run goes back to the queue and the trainer trains it later', async () => {
    const gen = join(tmp, 'gen');
    const ds = await openDataset('generated:flowers3?perClass=12&size=32&seed=3', { cacheDir: gen });
    const body = await packDir(join(gen, 'flowers3-seed3-size32-n12'));
    const up = await uploadDataset({
      url: api.url,
      token: api.adminToken,
      name: 'full-disk',
      format: 'tar',
      body,
      contentHash: ds.contentHash,
    });
    const sha = createHash('sha256').update(body).digest('hex');
    expect(up.archive.sha256).toBe(sha);
    // The download's file is /dev/full: every write fails with ENOSPC, as on a full disk. The trainer
    // removes the failed file, so the next attempt finds room.
    await mkdir(join(trainerHome, 'datasets', 'downloads'), { recursive: true });
    await symlink('/dev/full', join(trainerHome, 'datasets', 'downloads', `${sha}.archive.part`));
    const sweep = await admin.sweeps.create.mutate(spec('full disk', { datasets: ['dataset:full-disk'] }));
    const r = await waitRun(sweep.runIds[0], 'succeeded', 180_000);
    expect(r.attempt).toBe(2);
    const handedBack = r.events.find((e) => e.type === 'failed');
    expect(handedBack?.data).toMatchObject({ requeued: true });
    expect(String(handedBack?.data?.reason)).toMatch(/disk full on trainer t1 \(ENOSPC\)/);
    expect(trainer.text()).toMatch(/disk full: leasing no runs for 10 s/);
    expect(trainer.child.exitCode).toBeNull();
  });

  it('a trainer leases no more runs than the slots it registered, whatever freeSlots it claims', async () => {
    const greedy = client(api.url, trainerToken);
    const { trainerId } = await greedy.trainer.register.mutate({
      name: 'greedy',
      slots: 1,
      capabilities: { backend: 'greedy-backend', gpu: false },
    });
    const sweep = await admin.sweeps.create.mutate({
      ...spec('greedy', { seeds: [0, 1, 2] }),
      requires: { backend: 'greedy-backend' },
    });
    const first = await greedy.trainer.lease.mutate({ trainerId, freeSlots: 5 });
    expect(first.runs.length).toBe(1);
    expect((await greedy.trainer.lease.mutate({ trainerId, freeSlots: 5 })).runs.length).toBe(0);
    await admin.sweeps.cancel.mutate({ id: sweep.id });
  });

  it('tokens stay out of argv: --token is refused, a token file others can read is refused', async () => {
    const cli = (args: string[], env: Record<string, string> = {}) => {
      const child = spawn(
        process.execPath,
        [join(ROOT, 'apps', 'trainer', 'bin', 'headbench-trainer.js'), '--api', api.url, ...args],
        {
          cwd: ROOT,
          env: { ...process.env, HEADBENCH_TOKEN: '', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      return new Proc('cli', child);
    };
    const argv = cli(['--token', trainerToken]);
    expect((await argv.exited).code).toBe(2);
    expect(argv.text()).toMatch(/--token is no longer accepted: .*HEADBENCH_TOKEN.*--token-file/);
    const open = join(tmp, 'open-token');
    await writeFile(open, trainerToken);
    await chmod(open, 0o644);
    const loose = cli(['--token-file', open]);
    expect((await loose.exited).code).toBe(2);
    expect(loose.text()).toMatch(/group or others can read it \(mode 644\); run chmod 600/);
    // The running trainer got its token from a 0600 file: its command line does not hold it.
    const cmdline = await readFile(`/proc/${trainer.child.pid}/cmdline`, 'utf8');
    expect(cmdline).toContain('headbench-trainer');
    expect(cmdline).not.toContain(trainerToken);
  });
  it('tampered checkpoint: the trainer checks the sha256 the lease carries and starts over instead of resuming', async () => {
    await trainer.stop('SIGTERM'); // idle: exits at once; the run below goes to a hand-driven trainer first
    const holder = client(api.url, trainerToken);
    const { trainerId } = await holder.trainer.register.mutate({
      name: 'first-holder',
      slots: 1,
      capabilities: { backend: 'wasm', gpu: false },
    });
    const sweep = await admin.sweeps.create.mutate(spec('tampered checkpoint'));
    const runId = sweep.runIds[0];
    const [leased] = (await holder.trainer.lease.mutate({ trainerId, freeSlots: 1 })).runs;
    expect(leased.runId).toBe(runId);
    const stored = tarOf([{ name: 'state.json', data: Buffer.from('{"epoch":1}') }]);
    const put = await fetch(
      `${api.url}/artifacts/${runId}/checkpoint.tar?kind=checkpoint&epoch=1&leaseId=${leased.leaseId}`,
      {
        method: 'PUT',
        headers: { authorization: `Bearer ${trainerToken}`, 'content-type': 'application/octet-stream' },
        body: new Uint8Array(stored),
      },
    );
    expect(put.status).toBe(201);
    await holder.trainer.release.mutate({
      runId,
      leaseId: leased.leaseId,
      reason: 'hand-driven holder done',
    });
    // The stored checkpoint changes after it was stored (another writer, a disk fault).
    const db2 = new pg.Client({ connectionString: api.databaseUrl });
    await db2.connect();
    const { rows } = await db2.query<{ uri: string }>(
      `SELECT uri FROM artifacts WHERE run_id = $1 AND name = 'checkpoint.tar'`,
      [runId],
    );
    await db2.end();
    await writeFile(
      join(api.home, 'artifacts', rows[0].uri.slice('file:'.length)),
      tarOf([{ name: 'state.json', data: Buffer.from('{"epoch":1,"swapped":true}') }]),
    );
    trainer = launchTrainer();
    const r = await waitRun(runId, 'succeeded', 120_000);
    expect(r.events.map((e) => e.type)).toContain('resumed');
    expect(trainer.text()).toMatch(
      new RegExp(
        `run ${runId}: checkpoint of epoch 1 has sha256 [0-9a-f]{64}, not the stored [0-9a-f]{64}; starting over`,
      ),
    );
  });
});
