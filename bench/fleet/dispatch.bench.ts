// Fleet dispatch benchmark: runs dispatched per second and queue latency (queued → running) with 1, 4
// and 16 trainer slots of no-op runs (HEADBENCH_TRAINER_NOOP=1: the trainer leases, reports one point and
// completes without training), then the platform's overhead on a real small run against
// `headbench compare` alone on the same config.
//   npx tsx bench/fleet/dispatch.bench.ts            (RUNS=200 per slot count by default)
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEnv } from '@headbench/spec';
import { client, freshDatabase, ROOT, startApi, startTrainer, waitFor } from '../../test/fleet/harness.js';

const RUNS = readEnv(process.env, console.error).BENCH_RUNS;
const REAL = {
  dataset: 'generated:flowers3?perClass=24&size=32',
  epochs: 3,
  batchSize: 8,
  size: 32,
  lr: 0.001,
};

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const tmp = await mkdtemp(join(tmpdir(), 'headbench-dispatch-'));
const db = await freshDatabase();
const api = await startApi({ databaseUrl: db.url, home: join(tmp, 'api'), leaseSeconds: 30 });
const admin = client(api.url, api.adminToken);
const token = (await admin.tokens.create.mutate({ name: 'bench', role: 'trainer' })).token;
const rows: string[] = [];
try {
  for (const slots of [1, 4, 16]) {
    const trainer = startTrainer({
      url: api.url,
      token,
      name: `noop-${slots}`,
      slots,
      workDir: join(tmp, `noop-${slots}`),
      home: join(tmp, 'home'),
      env: { HEADBENCH_TRAINER_NOOP: '1' },
    });
    await trainer.waitForLine(/registered as/, 60_000);
    const t0 = Date.now();
    const sweep = await admin.sweeps.create.mutate({
      name: `noop ${slots}`,
      datasets: ['generated:flowers3'],
      backbones: ['smallcnn'],
      heads: ['gap'],
      optimizers: ['adam'],
      seeds: Array.from({ length: RUNS }, (_, i) => i),
      epochs: 1,
      batchSize: 8,
      size: 32,
      lr: 0.001,
    });
    await waitFor(
      async () => (await admin.sweeps.get.query({ id: sweep.id })).runs.succeeded === RUNS,
      600_000,
      `${RUNS} no-op runs`,
      100,
    );
    const wall = (Date.now() - t0) / 1000;
    const runs = await admin.runs.list.query({ sweepId: sweep.id, limit: 1000 });
    const latency = runs.map((r) => Date.parse(r.startedAt!) - Date.parse(r.createdAt));
    const done = Math.max(...runs.map((r) => Date.parse(r.finishedAt!)));
    const rate = RUNS / ((done - Math.min(...runs.map((r) => Date.parse(r.createdAt)))) / 1000);
    rows.push(
      `| ${slots} | ${RUNS} | ${rate.toFixed(1)} | ${pct(latency, 50)} | ${pct(latency, 95)} | ${wall.toFixed(1)} |`,
    );
    await trainer.stop('SIGTERM');
  }

  // Platform overhead: one real run through API + trainer vs `headbench compare` on the same config.
  const real = startTrainer({
    url: api.url,
    token,
    name: 'real',
    workDir: join(tmp, 'real'),
    home: join(tmp, 'home'),
  });
  await real.waitForLine(/registered as/, 60_000);
  const t0 = Date.now();
  const sweep = await admin.sweeps.create.mutate({
    name: 'real',
    datasets: [REAL.dataset],
    backbones: ['smallcnn'],
    heads: ['gap'],
    optimizers: ['adam'],
    seeds: [0],
    epochs: REAL.epochs,
    batchSize: REAL.batchSize,
    size: REAL.size,
    lr: REAL.lr,
    trainable: 'all',
  });
  const run = await waitFor(
    async () => {
      const [r] = await admin.runs.list.query({ sweepId: sweep.id });
      return r.status === 'succeeded' ? r : undefined;
    },
    600_000,
    'the real run',
    200,
  );
  const platform = (Date.parse(run.finishedAt!) - t0) / 1000;
  await real.stop('SIGTERM');
  const c0 = Date.now();
  const compare = spawnSync(
    process.execPath,
    [
      join(ROOT, 'apps', 'trainer', 'bin', 'headbench.js'),
      'compare',
      '--data',
      REAL.dataset,
      '--backbone',
      'smallcnn',
      '--heads',
      'gap',
      '--trainable',
      'all',
      '--epochs',
      String(REAL.epochs),
      '--batch',
      String(REAL.batchSize),
      '--size',
      String(REAL.size),
      '--optimizer',
      'adam',
      '--lr',
      String(REAL.lr),
      '--seeds',
      '1',
      '--backend',
      'wasm',
      '--quiet',
      '--home',
      join(tmp, 'home'),
      '--out',
      join(tmp, 'compare'),
    ],
    { encoding: 'utf8' },
  );
  if (compare.status !== 0) throw new Error(`compare failed: ${compare.stderr}`);
  const alone = (Date.now() - c0) / 1000;

  console.log(
    `\nheadbench fleet dispatch (${RUNS} no-op runs per row; API + trainer as processes, Postgres ${
      new URL(db.url).host
    })\n`,
  );
  console.log('| slots | runs | dispatched/s | queue latency p50 (ms) | p95 (ms) | wall (s) |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
  console.log(
    `\nreal run (${REAL.dataset}, smallcnn gap, ${REAL.epochs} epochs, batch ${REAL.batchSize}, wasm):` +
      `\n  platform (submit → succeeded, trainer already up) ${platform.toFixed(1)} s; training inside it ${run.timings?.seconds.toFixed(1)} s` +
      `\n  headbench compare alone (process start → report)  ${alone.toFixed(1)} s` +
      `\n  ratio platform / compare ${(platform / alone).toFixed(2)}`,
  );
  console.log('\ncommand: npx tsx bench/fleet/dispatch.bench.ts   (RUNS=<n> to change the no-op count)');
} finally {
  await api.proc.stop('SIGTERM', 15_000);
  await db.drop().catch(() => {});
  await rm(tmp, { recursive: true, force: true });
}
