import 'reflect-metadata';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIMITS } from '@headbench/spec';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { createExpressMiddleware } from '@trpc/server/adapters/express';
import { bearer, hashToken, newTokenSecret, TokenAuth } from './auth.js';
import { openDatabase } from './db/database.js';
import { type EmbeddedDb, startEmbeddedPostgres } from './db/embedded.js';
import { migrateDeploy } from './db/migrate.js';
import { AppModule } from './nest.js';
import { ArtifactService, FsArtifactStore } from './services/artifacts.js';
import { DatasetService } from './services/datasets.js';
import { LiveHub } from './services/live.js';
import { MetricService } from './services/metrics.js';
import { RunService } from './services/runs.js';
import { appRouter, type Context, type Services } from './trpc.js';

export type { AppRouter } from './trpc.js';

export const MIGRATIONS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../prisma/migrations');

export interface ApiOptions {
  /** Postgres URL; default env DATABASE_URL, else an embedded Postgres under `home`. */
  databaseUrl?: string;
  /** State directory (embedded database, artifacts, admin token); default env HEADBENCH_HOME or ./.headbench. */
  home?: string;
  /** Default env PORT or 4000; 0 picks a free port. */
  port?: number;
  /** Default env HOST or 127.0.0.1 (set 0.0.0.0 to serve trainers on other machines). */
  host?: string;
  /** Seconds without heartbeat before a run goes back to the queue; default env HEADBENCH_LEASE_SECONDS or 60. */
  leaseSeconds?: number;
  /** Default attempts per run; default 3. */
  maxAttempts?: number;
  /** Live update coalescing window (a point reaches dashboards at most this much later); default env HEADBENCH_LIVE_INTERVAL_MS or 100 ms. */
  liveIntervalMs?: number;
  /** Artifact upload limit; default env HEADBENCH_MAX_ARTIFACT_BYTES or 512 MiB. */
  maxArtifactBytes?: number;
  /** Dataset upload limit; default env HEADBENCH_MAX_DATASET_BYTES or 2 GiB. */
  maxDatasetBytes?: number;
  /** Seconds after start before expired leases are reaped; default one lease length. */
  reaperGraceSeconds?: number;
  /** Print the admin token when one is created; default true. */
  quiet?: boolean;
}

export interface ApiHandle {
  url: string;
  port: number;
  /** The admin token, when this start created it or it is stored in `<home>/admin-token`. */
  adminToken: string | null;
  databaseUrl: string;
  home: string;
  services: Services;
  close(): Promise<void>;
}

/**
 * Creates the first admin token when the database has none, and keeps its secret only in
 * `<home>/admin-token` (0600). Later starts read it back from there.
 */
async function ensureAdminToken(services: Services, home: string, quiet: boolean): Promise<string | null> {
  const file = join(home, 'admin-token');
  const { pool } = services.db;
  const { rows } = await pool.query(
    `SELECT 1 FROM tokens WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1`,
  );
  if (rows[0]) {
    try {
      const secret = (await readFile(file, 'utf8')).trim();
      return (await services.auth.verify(secret)) ? secret : null;
    } catch {
      return null;
    }
  }
  const secret = newTokenSecret();
  const prisma = services.db.prisma;
  const admin = await prisma.user.upsert({ where: { name: 'admin' }, create: { name: 'admin' }, update: {} });
  await prisma.token.create({
    data: {
      userId: admin.id,
      name: 'bootstrap admin',
      role: 'admin',
      hash: hashToken(secret),
      prefix: secret.slice(0, 7),
    },
  });
  await mkdir(home, { recursive: true });
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  if (!quiet) console.log(`headbench: created admin token (stored in ${file}):\n  ${secret}`);
  return secret;
}

export async function createApi(opts: ApiOptions = {}): Promise<ApiHandle> {
  const home = resolve(opts.home ?? process.env.HEADBENCH_HOME ?? join(process.cwd(), '.headbench'));
  const quiet = opts.quiet ?? false;
  const cleanup: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const fn of cleanup.splice(0).reverse())
      await fn().catch((e) => console.error('[close]', e?.message ?? e));
  };
  try {
    let databaseUrl = opts.databaseUrl ?? process.env.DATABASE_URL;
    let embedded: EmbeddedDb | undefined;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres(home, (m) => console.error(m));
      cleanup.push(() => embedded!.stop());
      databaseUrl = embedded.url;
    }
    const db = openDatabase(databaseUrl);
    cleanup.push(() => db.close());
    await migrateDeploy(db.pool, MIGRATIONS_DIR);

    const leaseSeconds = opts.leaseSeconds ?? (Number(process.env.HEADBENCH_LEASE_SECONDS) || 60);
    const hub = new LiveHub(opts.liveIntervalMs ?? (Number(process.env.HEADBENCH_LIVE_INTERVAL_MS) || 100));
    cleanup.push(async () => hub.close());
    const runs = new RunService(
      db.pool,
      hub,
      { leaseSeconds, maxAttempts: opts.maxAttempts ?? 3, reaperGraceSeconds: opts.reaperGraceSeconds },
      databaseUrl,
    );
    await runs.start();
    cleanup.push(() => runs.stop());
    const maxBytes =
      opts.maxArtifactBytes ?? (Number(process.env.HEADBENCH_MAX_ARTIFACT_BYTES) || LIMITS.artifactBytes);
    const auth = new TokenAuth(db.pool);
    const store = new FsArtifactStore(join(home, 'artifacts'));
    const maxDatasetBytes =
      opts.maxDatasetBytes ?? (Number(process.env.HEADBENCH_MAX_DATASET_BYTES) || LIMITS.datasetBytes);
    const services: Services = {
      db,
      auth,
      runs,
      metrics: new MetricService(db.pool, runs, hub, db.ingestPool),
      artifacts: new ArtifactService(db.pool, runs, store, maxBytes),
      datasets: new DatasetService(db.pool, store, maxDatasetBytes),
    };
    const adminToken = await ensureAdminToken(services, home, quiet);

    // Nest's body parser stays off: tRPC parses its own (with its own limit) and artifact uploads stream.
    const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(services, hub), {
      bodyParser: false,
      logger: ['error', 'warn'],
    });
    app.useWebSocketAdapter(new IoAdapter(app));
    app.use(
      '/trpc',
      createExpressMiddleware({
        router: appRouter,
        maxBodySize: 8 * 1024 * 1024 * 1.4,
        createContext: async ({ req }): Promise<Context> => ({
          principal: await auth.verify(bearer(req.headers.authorization)),
          services,
        }),
        onError: ({ error }) => {
          if (error.code === 'INTERNAL_SERVER_ERROR') console.error('[trpc]', error.cause ?? error);
        },
      }),
    );
    const port = opts.port ?? (process.env.PORT !== undefined ? Number(process.env.PORT) : 4000);
    const host = opts.host ?? process.env.HOST ?? '127.0.0.1';
    await app.listen(port, host);
    cleanup.push(() => app.close());
    const addr = app.getHttpServer().address() as AddressInfo;
    const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
    return { url, port: addr.port, adminToken, databaseUrl, home, services, close };
  } catch (e) {
    await close();
    throw e;
  }
}

// CLI: `npm run start -w @headbench/api` (tsx src/main.ts).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const api = await createApi();
  console.log(`headbench api on ${api.url} (tRPC ${api.url}/trpc, socket.io /live and /trainers)`);
  let closing = false;
  const shutdown = (sig: string) => {
    if (closing) return;
    closing = true;
    console.log(`headbench api: ${sig}, shutting down`);
    api.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}
