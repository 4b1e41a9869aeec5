/**
 * Metric ingest throughput and live latency of the headbench API.
 *
 *   npx tsx bench/api/ingest.bench.ts            (uses 127.0.0.1:5432, or BENCH_PG_URL; a fresh database)
 *   npx tsx bench/api/ingest.bench.ts --instances 2
 *
 * `--instances N` starts N API processes on the same database (socket.io's Postgres adapter between them):
 * run i reports to instance i mod N and the dashboard client watches from the last instance, so with 2 the
 * "cross" latency column is points that crossed from one instance to the other.
 *
 * Starts the API as its own process (as in production), leases up to 50 runs with one trainer token, then
 * for 1, 10 and 50 concurrent runs each run sends batches of 100 points back to back for a few seconds,
 * once per transport: `socket` (the `metrics` event on the /trainers socket, what trainer workers use while
 * connected) and `trpc` (trainer.reportMetrics over HTTP, their fallback). BENCH_TRANSPORTS=socket picks one.
 * A dashboard client subscribed to the sweep measures emit → receive latency from each point's `time`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  connectLive,
  connectTrainerSocket,
  createHeadbenchClient,
  type LeasedRun,
  type MetricPoint,
  reportMetricsOverSocket,
} from '@headbench/client';
import { readEnv } from '@headbench/spec';
import pg from 'pg';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const env = readEnv(process.env);
const PG = env.BENCH_PG_URL;
const SECONDS = env.BENCH_SECONDS;
const LEVELS = env.BENCH_CONCURRENCY.split(',').map(Number);
const BATCH = 100;
const TRANSPORTS = env.BENCH_TRANSPORTS.split(',') as ('socket' | 'trpc')[];
const INSTANCES = Number(
  parseArgs({ options: { instances: { type: 'string', default: '1' } } }).values.instances,
);
if (!Number.isInteger(INSTANCES) || INSTANCES < 1 || INSTANCES > 8)
  throw new Error(`--instances: '${INSTANCES}' must be an integer in [1, 8]`);

const pct = (xs: number[], p: number) => {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function main() {
  const dbName = `headbench_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const u = new URL(PG);
  u.pathname = `/${dbName}`;
  const home = await mkdtemp(join(tmpdir(), 'headbench-bench-'));
  // BENCH_CPU_PROF=<dir>: write a CPU profile of the API process there (node --cpu-prof).
  const prof = env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${env.BENCH_CPU_PROF}`] : [];
  const spawnApi = () =>
    spawn(process.execPath, [...prof, '--import', 'tsx', 'src/main.ts'], {
      cwd: join(root, 'apps/api'),
      env: {
        ...process.env,
        DATABASE_URL: u.toString(),
        HEADBENCH_HOME: home,
        PORT: '0',
        HEADBENCH_DB_POOL: '30',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  const apis: ReturnType<typeof spawnApi>[] = [];
  const cleanup = async () => {
    for (const api of apis) {
      api.kill('SIGTERM');
      if (api.exitCode === null) await new Promise((r) => api.once('exit', r));
    }
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    await rm(home, { recursive: true, force: true });
  };
  try {
    // One after another: the first creates the admin token the others read.
    const urls: string[] = [];
    for (let i = 0; i < INSTANCES; i++) {
      const api = spawnApi();
      apis.push(api);
      let out = '';
      api.stdout.on('data', (d) => {
        out += d;
      });
      while (!/headbench api on (http:\/\/\S+)/.test(out)) {
        if (api.exitCode !== null) throw new Error(`API exited:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      urls.push(out.match(/headbench api on (http:\/\/\S+)/)![1]);
    }
    const url = urls[0];
    const token = (await readFile(join(home, 'admin-token'), 'utf8')).trim();
    const client = createHeadbenchClient({ url, token });
    const trainerToken = (await client.tokens.create.mutate({ name: 'bench', role: 'trainer' })).token;
    const trainer = createHeadbenchClient({ url, token: trainerToken, batch: false });
    const maxC = Math.max(...LEVELS);
    const sweep = await client.sweeps.create.mutate({
      name: 'bench',
      datasets: ['generated:flowers17'],
      backbones: ['smallcnn'],
      heads: ['fc', 'gap'],
      optimizers: ['adam'],
      seeds: Array.from({ length: Math.ceil(maxC / 2) }, (_, i) => i),
      epochs: 1,
      batchSize: 8,
      size: 32,
      lr: 0.001,
    });
    const { trainerId } = await trainer.trainer.register.mutate({
      name: 'bench',
      slots: 64,
      capabilities: { backend: 'cpu' },
    });
    const runs: LeasedRun[] = (await trainer.trainer.lease.mutate({ trainerId, freeSlots: maxC })).runs;

    // Run i reports to instance i mod N, over that instance's socket or HTTP.
    const sockets = urls.map((u) => connectTrainerSocket({ url: u, token: trainerToken, trainerId }));
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((ok, fail) => {
            socket.once('connect', ok);
            socket.once('connect_error', fail);
          }),
      ),
    );
    const trainers = urls.map((u) => createHeadbenchClient({ url: u, token: trainerToken, batch: false }));
    const instanceOf = new Map(runs.map((r, i) => [r.runId, i % INSTANCES]));
    type Input = { runId: string; leaseId: string; points: MetricPoint[] };
    const send = {
      socket: (input: Input) => reportMetricsOverSocket(sockets[instanceOf.get(input.runId)!], input),
      trpc: (input: Input) => trainers[instanceOf.get(input.runId)!].trainer.reportMetrics.mutate(input),
    };

    // The dashboard watches from the last instance: with 2, half the runs' points cross over to it.
    const watchFrom = INSTANCES - 1;
    const live = connectLive({ url: urls[watchFrom], token });
    await live.subscribe([`sweep:${sweep.id}`]);
    let latencies: number[] = [];
    let crossed: number[] = [];
    live.onUpdate((upd) => {
      const now = Date.now();
      for (const m of upd.metrics) {
        const list = instanceOf.get(m.runId) === watchFrom ? latencies : crossed;
        for (const p of m.points) list.push(now - p.time);
      }
    });

    const load = () =>
      loadavg()
        .map((x) => x.toFixed(2))
        .join(', ');
    console.log(
      `headbench api ingest bench: batches of ${BATCH} points, ${SECONDS}s per level, ${INSTANCES} API instance(s) on ${urls.join(' ')}; ` +
        `${cpus().length} cores, load average ${load()}`,
    );
    console.log(
      'transport | concurrent runs | points/s | batches/s | live latency p50 / p99 (ms) | cross-instance p50 / p99 (ms) | points seen live',
    );
    const stepOf = new Map<string, number>();
    for (const transport of TRANSPORTS) {
      for (const c of LEVELS) {
        latencies = [];
        crossed = [];
        const active = runs.slice(0, c);
        let points = 0;
        let batches = 0;
        const t0 = performance.now();
        const until = Date.now() + SECONDS * 1000;
        await Promise.all(
          active.map(async (run) => {
            while (Date.now() < until) {
              const base = stepOf.get(run.runId) ?? 0;
              stepOf.set(run.runId, base + BATCH);
              const now = Date.now();
              const batch = new Array<MetricPoint>(BATCH);
              for (let i = 0; i < BATCH; i++)
                batch[i] = { name: 'batch/loss', step: base + i, epoch: 0, value: Math.random(), time: now };
              const out = await send[transport]({ runId: run.runId, leaseId: run.leaseId, points: batch });
              if (out.inserted !== BATCH) throw new Error(`${transport}: stored ${out.inserted}/${BATCH}`);
              points += BATCH;
              batches++;
            }
          }),
        );
        const secs = (performance.now() - t0) / 1000;
        await new Promise((r) => setTimeout(r, 600)); // let the last coalesced updates arrive
        const rate = points / secs;
        console.log(
          `${transport.padStart(9)} | ${String(c).padStart(15)} | ${rate.toFixed(0).padStart(8)} | ` +
            `${(batches / secs).toFixed(0).padStart(9)} | ` +
            `${pct(latencies, 50).toFixed(0).padStart(12)} / ${pct(latencies, 99).toFixed(0).padEnd(12)} | ` +
            `${pct(crossed, 50).toFixed(0).padStart(14)} / ${pct(crossed, 99).toFixed(0).padEnd(14)} | ` +
            `${latencies.length + crossed.length}/${points}`,
        );
      }
    }
    console.log(`load average after: ${load()}`);
    live.close();
    for (const socket of sockets) socket.close();
  } finally {
    await cleanup();
  }
}

await main();
