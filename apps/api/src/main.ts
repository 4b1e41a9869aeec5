import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readEnv } from '@headbench/spec';
import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { createExpressMiddleware } from '@trpc/server/adapters/express';
import { bearer } from './auth.js';
import { type Cluster, openCluster } from './cluster/index.js';
import { ClusterIoAdapter } from './cluster/io-adapter.js';
import { type Database, openDatabase } from './db/database.js';
import { type EmbeddedDb, startEmbeddedPostgres } from './db/embedded.js';
import { migrateDeploy } from './db/migrate.js';
import { FeaturesModule } from './modules/features.module.js';
import type { Services } from './services/index.js';
import { type ApiConfig, SERVICES, ServicesModule } from './services/services.module.js';
import type { StorageKind } from './storage/index.js';
import type { Context } from './trpc/init.js';
import { appRouter } from './trpc/router.js';

export type { AppRouter } from './trpc/router.js';

/** The whole API: its services and its feature modules (HTTP routes, sockets). */
@Module({})
// biome-ignore lint/complexity/noStaticOnlyClass: Nest's dynamic modules are classes with a static forRoot
export class ApiModule {
  static forRoot(config: ApiConfig, db: Database, cluster: Cluster): DynamicModule {
    return { module: ApiModule, imports: [ServicesModule.forRoot(config, db, cluster), FeaturesModule] };
  }
}

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
  /** Artifact and dataset store; default env HEADBENCH_STORAGE or local. */
  storage?: StorageKind;
  /** Directory of the local store; default env HEADBENCH_STORAGE_DIR or `<home>/artifacts`. */
  storageDir?: string;
  /** Redis carrying live updates between instances; default env REDIS_URL, else Postgres carries them. */
  redisUrl?: string;
  /** How long pg-boss keeps a waiting job (tests shorten it); default ten years. */
  queueRetentionSeconds?: number;
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

export async function createApi(opts: ApiOptions = {}): Promise<ApiHandle> {
  const env = readEnv(process.env, (m) => console.error(`headbench: ${m}`));
  const home = resolve(opts.home ?? env.HEADBENCH_HOME ?? join(process.cwd(), '.headbench'));
  const quiet = opts.quiet ?? false;
  const cleanup: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const fn of cleanup.splice(0).reverse())
      await fn().catch((e) => console.error('[close]', e?.message ?? e));
  };
  try {
    let databaseUrl = opts.databaseUrl ?? env.DATABASE_URL;
    let embedded: EmbeddedDb | undefined;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres(home, (m) => console.error(m), env.HEADBENCH_PG_PORT);
      const db = embedded;
      cleanup.push(() => db.stop());
      databaseUrl = embedded.url;
    }
    const db = openDatabase(databaseUrl, env.HEADBENCH_DB_POOL);
    cleanup.push(() => db.close());
    await migrateDeploy(db.pool, MIGRATIONS_DIR);
    const cluster = await openCluster(databaseUrl, opts.redisUrl ?? env.REDIS_URL);
    cleanup.push(() => cluster.close());

    const config: ApiConfig = {
      home,
      databaseUrl,
      leaseSeconds: opts.leaseSeconds ?? env.HEADBENCH_LEASE_SECONDS,
      maxAttempts: opts.maxAttempts ?? 3,
      liveIntervalMs: opts.liveIntervalMs ?? env.HEADBENCH_LIVE_INTERVAL_MS,
      maxArtifactBytes: opts.maxArtifactBytes ?? env.HEADBENCH_MAX_ARTIFACT_BYTES,
      maxDatasetBytes: opts.maxDatasetBytes ?? env.HEADBENCH_MAX_DATASET_BYTES,
      reaperGraceSeconds: opts.reaperGraceSeconds,
      storage: opts.storage ?? env.HEADBENCH_STORAGE,
      storageDir: resolve(opts.storageDir ?? env.HEADBENCH_STORAGE_DIR ?? join(home, 'artifacts')),
      queueRetentionSeconds: opts.queueRetentionSeconds,
      embedded,
    };
    // Nest's body parser stays off: tRPC parses its own (with its own limit) and uploads stream.
    const app = await NestFactory.create<NestExpressApplication>(ApiModule.forRoot(config, db, cluster), {
      bodyParser: false,
      logger: ['error', 'warn'],
      abortOnError: false,
    });
    cleanup.push(() => app.close()); // closes HTTP and sockets, then stops the run queue and the hub
    const services = app.get<Services>(SERVICES);
    const adminToken = await services.tokens.ensureAdmin(home, quiet);
    app.useWebSocketAdapter(new ClusterIoAdapter(app, cluster.adapter));
    // tRPC parses and answers its own routes: Nest hosts it as Express middleware.
    app.use(
      '/trpc',
      createExpressMiddleware({
        router: appRouter,
        maxBodySize: 8 * 1024 * 1024 * 1.4,
        createContext: async ({ req }): Promise<Context> => ({
          principal: await services.auth.verify(bearer(req.headers.authorization)),
          services,
        }),
        onError: ({ error }) => {
          if (error.code === 'INTERNAL_SERVER_ERROR') console.error('[trpc]', error.cause ?? error);
        },
      }),
    );
    const port = opts.port ?? env.PORT ?? 4000;
    const host = opts.host ?? env.HOST;
    await app.listen(port, host);
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
