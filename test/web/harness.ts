// Real processes for the dashboard tests: the API on a fresh Postgres database, a built Next server, a real
// `headbench-trainer` worker, and Debian's chromium driven by Playwright's library API (no browser download).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { CHROMIUM } from '../browser.js';
import { freePort, freshDatabase, ROOT, waitFor } from '../support.js';

export { CHROMIUM } from '../browser.js';
export { freePort, ROOT, waitFor };
export const WEB = join(ROOT, 'apps', 'web');
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
];

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface ApiProcess {
  url: string;
  adminToken: string;
  dispose(): Promise<void>;
}

/**
 * The API as its own process (`tsx apps/api/src/main.ts`, as `npm run start -w @headbench/api` runs it) on a
 * fresh database of the machine's Postgres.
 */
export async function startApi(): Promise<ApiProcess> {
  const db = await freshDatabase('headbench_web');
  const home = await mkdtemp(join(tmpdir(), 'headbench-web-'));
  const port = await freePort();
  const proc = spawn(
    join(ROOT, 'node_modules', '.bin', 'tsx'),
    ['--tsconfig', join(ROOT, 'apps', 'api', 'tsconfig.json'), join(ROOT, 'apps', 'api', 'src', 'main.ts')],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        HEADBENCH_HOME: home,
        PORT: String(port),
        HOST: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  proc.stdout?.on('data', (d) => (log += d));
  proc.stderr?.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`api exited:\n${log}`);
      return fetch(`${url}/trpc/whoami`).then(
        (r) => r.status === 401,
        () => false,
      );
    },
    90_000,
    `the API on ${url}`,
  );
  const adminToken = (await readFile(join(home, 'admin-token'), 'utf8')).trim();
  return {
    url,
    adminToken,
    async dispose() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      await db.drop();
      await rm(home, { recursive: true, force: true });
    },
  };
}

async function newest(dir: string): Promise<number> {
  let t = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? await newest(p) : (await stat(p)).mtimeMs);
  }
  return t;
}

/** `next build`, skipped when the existing build is newer than every source it depends on. */
export async function buildWeb(): Promise<void> {
  const built = await stat(join(WEB, '.next', 'BUILD_ID')).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  const sources = Math.max(
    await newest(join(WEB, 'src')),
    ...(await Promise.all(['ui', 'spec', 'client'].map((p) => newest(join(ROOT, 'packages', p, 'src'))))),
    (await stat(join(WEB, 'next.config.ts'))).mtimeMs,
  );
  if (built > sources) return;
  const r = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'next', 'dist', 'bin', 'next'), 'build'],
    {
      cwd: WEB,
      encoding: 'utf8',
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
      timeout: 300_000,
    },
  );
  if (r.status !== 0) throw new Error(`next build failed:\n${r.stdout}\n${r.stderr}`);
}

export interface WebServer {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export async function startWeb(apiUrl: string): Promise<WebServer> {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, 'node_modules', 'next', 'dist', 'bin', 'next'),
      'start',
      '--port',
      String(port),
      '--hostname',
      '127.0.0.1',
    ],
    {
      cwd: WEB,
      env: {
        ...process.env,
        HEADBENCH_API_URL: apiUrl,
        NEXT_TELEMETRY_DISABLED: '1',
        NODE_ENV: 'production',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let log = '';
  proc.stdout?.on('data', (d) => (log += d));
  proc.stderr?.on('data', (d) => (log += d));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`next start exited:\n${log}`);
    const ok = await fetch(`${url}/signin`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > until) throw new Error(`next start did not answer:\n${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    proc,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

export interface TrainerProcess {
  proc: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

/** `headbench-trainer` (the real worker: child processes training through trainRun on the wasm backend). */
export async function startTrainer(opts: {
  apiUrl: string;
  token: string;
  name: string;
  slots: number;
}): Promise<TrainerProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'headbench-web-trainer-'));
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, 'apps', 'trainer', 'bin', 'headbench-trainer.js'),
      ...['--api', opts.apiUrl, '--name', opts.name],
      ...['--slots', String(opts.slots), '--backend', 'wasm', '--poll', '1000'],
      ...['--work-dir', join(dir, 'work'), '--home', join(dir, 'home')],
    ],
    // Tokens go through the environment: trainers refuse them in argv.
    { cwd: ROOT, env: { ...process.env, HEADBENCH_TOKEN: opts.token }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  proc.stdout?.on('data', (d) => (log += d));
  proc.stderr?.on('data', (d) => (log += d));
  return {
    proc,
    log: () => log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        // SIGKILL: the test is over, nothing to hand back.
        proc.kill('SIGKILL');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
