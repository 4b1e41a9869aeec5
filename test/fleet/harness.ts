// Real processes for fleet tests: the API (its own `main.ts`, so it can be killed and restarted like a
// deployed server) on a fresh database of the machine's Postgres, and `headbench-trainer` processes.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHeadbenchClient, type HeadbenchClient } from '@headbench/client';
import { readEnv } from '@headbench/spec';
import pg from 'pg';
import { freePort, freshDatabase, PG_ADMIN_URL, ROOT, sleep, waitFor } from '../support.js';

export { freePort, freshDatabase, PG_ADMIN_URL, ROOT, sleep, waitFor };

/** A child process whose output is kept (and echoed with a prefix when HEADBENCH_TEST_VERBOSE is set). */
export class Proc {
  readonly out: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim() || /is already registered|Warning: @headbench\/engine|trace-warnings/.test(line))
          continue;
        this.out.push(line);
        if (readEnv(process.env).HEADBENCH_TEST_VERBOSE) console.log(`[${name}] ${line}`);
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  }
  text() {
    return this.out.join('\n');
  }
  waitForLine(re: RegExp, ms: number) {
    return waitFor(() => this.out.find((l) => re.test(l)), ms, `${this.name}: ${re}`, 100);
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 60_000) {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

export interface ApiServer {
  url: string;
  port: number;
  home: string;
  databaseUrl: string;
  adminToken: string;
  proc: Proc;
  /** Starts the same API again (same port, database and home): the restart after a crash or deploy. */
  restart(): Promise<void>;
}

export async function startApi(opts: {
  databaseUrl: string;
  home: string;
  leaseSeconds: number;
  port?: number;
  /** More environment for the API process (storage, cluster settings). */
  env?: Record<string, string>;
}): Promise<ApiServer> {
  const port = opts.port ?? (await freePort());
  const launch = async () => {
    // cwd apps/api: tsx reads that tsconfig (Nest needs experimental decorators).
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: join(ROOT, 'apps', 'api'),
      env: {
        ...process.env,
        DATABASE_URL: opts.databaseUrl,
        HEADBENCH_HOME: opts.home,
        HEADBENCH_LEASE_SECONDS: String(opts.leaseSeconds),
        PORT: String(port),
        HOST: '127.0.0.1',
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = new Proc('api', child);
    await Promise.race([
      proc.waitForLine(/headbench api on/, 90_000),
      proc.exited.then((e) => {
        throw new Error(`API exited during start (${JSON.stringify(e)}):\n${proc.text()}`);
      }),
    ]);
    return proc;
  };
  const server: ApiServer = {
    url: `http://127.0.0.1:${port}`,
    port,
    home: opts.home,
    databaseUrl: opts.databaseUrl,
    adminToken: '',
    proc: await launch(),
    async restart() {
      server.proc = await launch();
    },
  };
  server.adminToken = (await readFile(join(opts.home, 'admin-token'), 'utf8')).trim();
  return server;
}

export function client(url: string, token: string): HeadbenchClient {
  return createHeadbenchClient({ url, token, batch: false });
}

export function startTrainer(opts: {
  url: string;
  token: string;
  readToken?: string;
  name: string;
  workDir: string;
  home: string;
  slots?: number;
  env?: Record<string, string>;
  dataRoots?: string[];
  allowHosts?: string[];
}): Proc {
  const args = [
    join(ROOT, 'apps', 'trainer', 'bin', 'headbench-trainer.js'),
    '--api',
    opts.url,
    '--name',
    opts.name,
    '--slots',
    String(opts.slots ?? 1),
    '--backend',
    'wasm',
    '--work-dir',
    opts.workDir,
    '--home',
    opts.home,
    '--poll',
    '1000',
  ];
  for (const r of opts.dataRoots ?? []) args.push('--data-root', r);
  for (const h of opts.allowHosts ?? []) args.push('--allow-host', h);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    // Tokens go through the environment: trainers refuse them in argv.
    env: {
      ...process.env,
      HEADBENCH_TOKEN: opts.token,
      ...(opts.readToken ? { HEADBENCH_READ_TOKEN: opts.readToken } : {}),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Proc(opts.name, child);
}

/** Every stored point of a run, per metric name, in step order (straight from the metrics table). */
export async function storedPoints(databaseUrl: string, runId: string) {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ name: string; step: number; time: Date }>(
      'SELECT name, step, time FROM metrics WHERE run_id = $1 ORDER BY name, step',
      [runId],
    );
    const out: Record<string, { step: number; time: number }[]> = {};
    for (const r of rows) {
      if (!out[r.name]) out[r.name] = [];
      out[r.name].push({ step: r.step, time: r.time.getTime() });
    }
    return out;
  } finally {
    await c.end();
  }
}

/** Steps from..to, every one exactly once. */
export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
