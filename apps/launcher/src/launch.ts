// `npm start`: the whole platform on one machine. Embedded Postgres (or DATABASE_URL) + migrations + API,
// the dashboard when apps/web is a Next app, a local trainer with one slot per core, and the default sweep.
// Ctrl-C stops everything; the data stays in HEADBENCH_HOME (default ./.headbench) for the next start.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ApiHandle, createApi } from '@headbench/api';
import { createHeadbenchClient, type HeadbenchClient } from '@headbench/client';
import { readEnv } from '@headbench/spec';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TRAINER_BIN = join(ROOT, 'apps', 'trainer', 'bin', 'headbench-trainer.js');

/**
 * Sized for a few minutes on an idle 2-core machine (wasm, two slots): 10/7/7 epochs took 2.6 minutes
 * with the engine's own kernels, too few epochs to see fc overfit late; see README "Trainer fleet".
 */
export const DEFAULT_DATASET = 'generated:flowers17?size=64&perClass=32';
export const PRETRAIN_DATASET = 'generated:flowers17?size=64&perClass=32&seed=1';
const common = {
  backbones: ['smallcnn' as const],
  optimizers: ['adam' as const],
  batchSize: 32,
  size: 32,
  lr: 0.001,
  trainable: 'all' as const,
  camSamples: 4,
};
export const DEFAULT_SWEEPS = {
  pretrain: {
    ...common,
    name: 'default: smallcnn pretrain (flowers17 seed 1)',
    datasets: [PRETRAIN_DATASET],
    heads: ['gap' as const],
    seeds: [0],
    epochs: 20,
  },
  scratch: {
    ...common,
    name: 'default: smallcnn from scratch',
    datasets: [DEFAULT_DATASET],
    heads: ['fc' as const, 'gap' as const, 'gmp' as const],
    seeds: [0, 1, 2],
    epochs: 20,
  },
  /**
   * Real transfer learning: MobileNetV2 with the weights shipped in the nsfwjs npm package (ImageNet-initialised,
   * fine-tuned by its authors), frozen, so one backbone pass fills the feature cache for every head and seed.
   * 96 px keeps the fc head small (3×3×1280 features). Adam lr 1e-3 and 20 epochs like the scratch sweep:
   * with RMSprop lr 1e-4 (the Keras protocol) gap reached only 19% validation accuracy in 15 epochs here.
   */
  pretrained: {
    name: 'default: mobilenetv2 pretrained (npm:nsfwjs/mobilenet_v2, frozen)',
    datasets: [DEFAULT_DATASET],
    backbones: ['mobilenetv2' as const],
    weights: ['npm:nsfwjs/mobilenet_v2'],
    trainable: 'frozen' as const,
    heads: ['fc' as const, 'gap' as const, 'gmp' as const],
    optimizers: ['adam' as const],
    lr: 0.001,
    batchSize: 32,
    size: 96,
    seeds: [0, 1, 2],
    epochs: 20,
    camSamples: 4,
  },
  transfer: (pretrainRunId: string) => ({
    ...common,
    name: 'default: smallcnn transfer (pretrained backbone)',
    datasets: [DEFAULT_DATASET],
    weights: [`run:${pretrainRunId}`],
    heads: ['fc' as const, 'gap' as const, 'gmp' as const],
    seeds: [0, 1, 2],
    epochs: 15,
  }),
};

const say = (m: string) => console.log(`headbench: ${m}`);
const env = readEnv(process.env, say);

async function startApi(home: string): Promise<ApiHandle> {
  const port = env.PORT ?? 4000;
  try {
    // quiet: the launcher says itself whether the admin token was created now (and shows it only then).
    return await createApi({ home, port, quiet: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || env.PORT !== undefined) throw e;
    say(`port ${port} is taken; using a free port`);
    return createApi({ home, port: 0, quiet: true });
  }
}

/**
 * The local trainer's token, kept in `<home>/launcher-tokens.json` (0600). A trainer token is all it needs:
 * the API sends what a run reads (dataset hash and archive, the model of `weights: run:<id>`) with its lease.
 */
async function localTokens(home: string, url: string, admin: HeadbenchClient) {
  const file = join(home, 'launcher-tokens.json');
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as { trainer: string };
    const ok = await createHeadbenchClient({ url, token: saved.trainer, batch: false })
      .whoami.query()
      .then(
        (w) => w.role === 'trainer',
        () => false,
      );
    if (ok) return { trainer: saved.trainer };
  } catch {}
  const trainer = (
    await admin.tokens.create.mutate({ name: 'local trainer', role: 'trainer', user: 'local' })
  ).token;
  await writeFile(file, JSON.stringify({ trainer }), { mode: 0o600 });
  return { trainer };
}

/** Submits the default sweeps that do not exist yet; the transfer sweep once its pretrain run succeeded. */
async function defaultSweeps(admin: HeadbenchClient, stopped: () => boolean) {
  const find = async (name: string) =>
    (await admin.sweeps.list.query({ limit: 500 })).find((s) => s.name === name);
  let pretrain = await find(DEFAULT_SWEEPS.pretrain.name);
  if (!pretrain) {
    await admin.sweeps.create.mutate(DEFAULT_SWEEPS.pretrain);
    pretrain = await find(DEFAULT_SWEEPS.pretrain.name);
    say(`submitted '${DEFAULT_SWEEPS.pretrain.name}' (1 run)`);
  }
  if (!(await find(DEFAULT_SWEEPS.scratch.name))) {
    const s = await admin.sweeps.create.mutate(DEFAULT_SWEEPS.scratch);
    say(`submitted '${DEFAULT_SWEEPS.scratch.name}' (${s.runs} runs)`);
  } else say('default sweeps already submitted: continuing them');
  // Its own check: a home from before this sweep existed gets it on the next start.
  if (!(await find(DEFAULT_SWEEPS.pretrained.name))) {
    const s = await admin.sweeps.create.mutate(DEFAULT_SWEEPS.pretrained);
    say(`submitted '${DEFAULT_SWEEPS.pretrained.name}' (${s.runs} runs)`);
  }
  const transferName = DEFAULT_SWEEPS.transfer('x').name;
  if (await find(transferName)) return;
  const [source] = await admin.runs.list.query({ sweepId: pretrain!.id, limit: 1 });
  say(`'${transferName}' is submitted once the pretrain run ${source.id} succeeds`);
  let told = '';
  while (!stopped()) {
    const r = await admin.runs.get.query({ id: source.id }).catch(() => undefined);
    if (r?.status === 'succeeded') {
      const s = await admin.sweeps.create.mutate(DEFAULT_SWEEPS.transfer(source.id));
      say(`submitted '${transferName}' (${s.runs} runs, weights run:${source.id})`);
      return;
    }
    if (r && (r.status === 'failed' || r.status === 'canceled') && told !== r.status) {
      // Once per state (it used to repeat every poll): a retried run goes on being waited for.
      told = r.status;
      say(
        `pretrain run ${source.id} ${r.status}; the transfer sweep is not submitted (retry the run to get it)`,
      );
    }
    await sleep(3000);
  }
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/**
 * Says once when every default sweep has finished, with the run counts and the time since this start:
 * the main job's end is otherwise only visible on the dashboard.
 */
async function reportWhenDone(
  admin: HeadbenchClient,
  stopped: () => boolean,
  started: number,
  web: string | null,
) {
  const names = [
    DEFAULT_SWEEPS.pretrain.name,
    DEFAULT_SWEEPS.scratch.name,
    DEFAULT_SWEEPS.pretrained.name,
    DEFAULT_SWEEPS.transfer('x').name,
  ];
  while (!stopped()) {
    const sweeps = (await admin.sweeps.list.query({ limit: 500 }).catch(() => [])).filter((s) =>
      names.includes(s.name),
    );
    if (sweeps.length === names.length && sweeps.every((s) => s.status !== 'active')) {
      const counts: Record<string, number> = {};
      for (const s of sweeps)
        for (const r of await admin.runs.list.query({ sweepId: s.id, limit: 1000 }))
          counts[r.status] = (counts[r.status] ?? 0) + 1;
      const minutes = ((performance.now() - started) / 60_000).toFixed(1);
      const scratch = sweeps.find((s) => s.name === DEFAULT_SWEEPS.scratch.name)!;
      say(
        `default sweeps finished, ${minutes} min after this start: ${counts.succeeded ?? 0} runs succeeded, ` +
          `${counts.failed ?? 0} failed, ${counts.canceled ?? 0} canceled; ` +
          (web ? `compare the heads at ${web}/sweeps/${scratch.id}` : `sweep ${scratch.id}`),
      );
      return;
    }
    await sleep(10_000);
  }
}

/** The dashboard's process: `next build` while the first build runs, then `next start`. */
interface WebProcess {
  current: ChildProcess | null;
}

/**
 * The dashboard in production mode (`next start`), never `next dev` beside the trainers: without a build
 * (a fresh clone) it is built once first, with a message, while the API and the trainer already run.
 */
function startWeb(apiUrl: string, stopping: () => boolean): WebProcess | null {
  const webDir = join(ROOT, 'apps', 'web');
  let pkg: { scripts?: Record<string, string>; dependencies?: Record<string, string> } = {};
  try {
    pkg = JSON.parse(readFileSync(join(webDir, 'package.json'), 'utf8'));
  } catch {}
  if (env.HEADBENCH_NO_WEB) {
    say('dashboard skipped (HEADBENCH_NO_WEB=1)');
    return null;
  }
  if (!pkg.dependencies?.next || !pkg.scripts?.start || !pkg.scripts?.build) {
    say('dashboard skipped: apps/web has no next build/start scripts');
    return null;
  }
  const port = String(env.WEB_PORT);
  const run = (script: 'build' | 'start') =>
    spawn('npm', ['run', script, '-w', '@headbench/web'], {
      cwd: ROOT,
      env: { ...process.env, PORT: port, HEADBENCH_API: apiUrl },
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true, // its own group: we stop it (and next's children) ourselves
    });
  const web: WebProcess = { current: null };
  const serve = () => {
    say(`dashboard: http://127.0.0.1:${port}`);
    web.current = run('start');
  };
  if (existsSync(join(webDir, '.next', 'BUILD_ID'))) {
    serve();
    return web;
  }
  say('building the dashboard once for production (next build; a few minutes on 2 cores)...');
  const t0 = performance.now();
  web.current = run('build');
  web.current.once('exit', (code) => {
    if (stopping()) return;
    if (code !== 0)
      return say(`dashboard build failed (exit ${code}, output above); the API and the trainer go on`);
    say(`dashboard built in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    serve();
  });
  return web;
}

/** Stops a process group: SIGTERM/SIGINT, then SIGKILL after `ms`. */
async function stopChild(child: ChildProcess | null, signal: NodeJS.Signals, ms: number, group = false) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  const kill = (s: NodeJS.Signals) => {
    try {
      if (group && child.pid) process.kill(-child.pid, s);
      else child.kill(s);
    } catch {}
  };
  kill(signal);
  const t = setTimeout(() => kill('SIGKILL'), ms);
  await exited;
  clearTimeout(t);
}

export async function launch(_argv: string[]): Promise<number> {
  const started = performance.now();
  const home = resolve(env.HEADBENCH_HOME ?? join(env.INIT_CWD ?? process.cwd(), '.headbench'));
  await mkdir(home, { recursive: true });
  say(`state in ${home}${env.DATABASE_URL ? ' (database: DATABASE_URL)' : ' (embedded Postgres)'}`);
  const adminTokenFile = join(home, 'admin-token');
  const hadAdminToken = await stat(adminTokenFile).then(
    () => true,
    () => false,
  );
  const api = await startApi(home);
  let stopping = false;
  let web: WebProcess | null = null;
  let trainer: ChildProcess | null = null;
  const finished = new Promise<number>((resolveExit) => {
    const shutdown = async (sig: string) => {
      if (stopping) return;
      stopping = true;
      say(`${sig}: stopping the trainer (runs go back to the queue and resume from their checkpoints)...`);
      // The trainer got the terminal's SIGINT too; make sure, then wait for it to hand its runs back.
      await stopChild(trainer, 'SIGINT', 30_000);
      await stopChild(web?.current ?? null, 'SIGTERM', 10_000, true);
      say('stopping the API and the database...');
      await Promise.race([api.close(), new Promise((r) => setTimeout(r, 20_000))]);
      say('stopped; data kept for the next start');
      resolveExit(0);
    };
    // The embedded Postgres runs in its own process group and the API owns it: it stops in api.close(),
    // after the trainer handed its runs back.
    process.on('SIGINT', () => void shutdown('SIGINT'));
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
  });
  try {
    if (!api.adminToken) throw new Error(`no admin token in ${join(home, 'admin-token')}; cannot continue`);
    const admin = createHeadbenchClient({ url: api.url, token: api.adminToken, batch: false });
    const tokens = await localTokens(home, api.url, admin);
    console.log(`
headbench is running
  API        ${api.url}   (tRPC ${api.url}/trpc, socket.io /live and /trainers)
  ${
    hadAdminToken
      ? `admin token in ${adminTokenFile}`
      : `admin token ${api.adminToken}   (created now, shown only this once; stored in ${adminTokenFile}, mode 600)`
  }
  more trainers: HEADBENCH_TOKEN_FILE=<file holding a trainer token, mode 600> npx headbench-trainer --api ${api.url}
  Ctrl-C stops everything; the next npm start continues where this one stopped.
`);
    if (!stopping) web = startWeb(api.url, () => stopping);
    const slots = env.HEADBENCH_TRAINER_SLOTS ?? availableParallelism();
    if (!stopping) {
      trainer = spawn(
        process.execPath,
        [
          TRAINER_BIN,
          '--api',
          api.url,
          '--name',
          'local',
          '--slots',
          String(slots),
          '--home',
          home,
          '--work-dir',
          join(home, 'trainer', 'local'),
        ],
        // Own process group, so a terminal Ctrl-C reaches only us and the trainer gets exactly one SIGINT
        // (a second one means "exit now"); the IPC channel makes it stop if we die.
        // The token goes in the environment (only this user can read it), never in argv (everyone can).
        {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          detached: true,
          env: { ...process.env, HEADBENCH_TOKEN: tokens.trainer, HEADBENCH_TOKEN_FILE: '' },
        },
      );
      trainer.on('exit', (code, signal) => {
        if (!stopping) say(`the local trainer exited (${signal ?? code}); the API keeps running`);
      });
      say(`local trainer: ${slots} slot(s)`);
    }
    if (!stopping) await defaultSweeps(admin, () => stopping);
    const webUrl = web ? `http://127.0.0.1:${env.WEB_PORT}` : null;
    if (!stopping) void reportWhenDone(admin, () => stopping, started, webUrl).catch(() => {});
  } catch (e) {
    if (!stopping) {
      console.error(`headbench: ${(e as Error).message}`);
      await stopChild(trainer, 'SIGINT', 30_000);
      await stopChild(web?.current ?? null, 'SIGTERM', 10_000, true);
      await api.close();
      return 1;
    }
  }
  return finished;
}
