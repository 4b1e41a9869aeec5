// What makes several API instances behind one address act as one: a socket.io adapter that carries live
// updates, trainer pushes and room membership between them (Redis when REDIS_URL is set, else the API's own
// Postgres), a bus that drops cached tokens everywhere when one is revoked, and a leader (a Postgres advisory
// lock) so periodic work such as the reaper runs on one instance at a time.
import { createAdapter as createPostgresAdapter } from '@socket.io/postgres-adapter';
import { createAdapter as createRedisAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import pg from 'pg';
import { survivePostgresRestarts } from '../db/database.js';
import { ClusterBus } from './bus.js';
import { ClusterLeader } from './leader.js';

/** socket.io's adapter factory (what `server.adapter(...)` takes). */
// biome-ignore lint/suspicious/noExplicitAny: socket.io types the factory's namespace argument as any
export type AdapterFactory = (nsp: any) => any;

export interface Cluster {
  /** 'redis' or 'postgres': what carries socket.io traffic between instances. */
  transport: 'redis' | 'postgres';
  adapter: AdapterFactory;
  bus: ClusterBus;
  leader: ClusterLeader;
  close(): Promise<void>;
}

/**
 * Table of the Postgres adapter for payloads over NOTIFY's 8000 bytes. In its own schema (as pg-boss keeps
 * its tables in `pgboss`), so Prisma's migrations and drift checks never see it.
 */
const SCHEMA = 'headbench_cluster';
const ATTACHMENTS = `${SCHEMA}.socket_io_attachments`;

export async function openCluster(databaseUrl: string, redisUrl?: string): Promise<Cluster> {
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const fn of closers.splice(0).reverse()) await fn().catch(() => {});
  };
  try {
    const bus = new ClusterBus(databaseUrl);
    closers.push(() => bus.close());
    await bus.start();
    const leader = new ClusterLeader(databaseUrl);
    closers.push(() => leader.close());
    leader.start();
    let adapter: AdapterFactory;
    let transport: Cluster['transport'];
    if (redisUrl) {
      const pub = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 });
      const sub = pub.duplicate();
      for (const c of [pub, sub]) c.on('error', (e) => console.error('[cluster] redis:', e.message));
      closers.push(async () => {
        pub.disconnect();
        sub.disconnect();
      });
      await Promise.all([pub.connect(), sub.connect()]).catch((e: Error) => {
        const where = new URL(redisUrl);
        // Host and port only: the URL may carry a password.
        throw new Error(
          `REDIS_URL: cannot reach Redis at ${where.hostname}:${where.port || 6379} (${e.message})`,
        );
      });
      // One channel set per database: instances of one deployment meet, other deployments on the same
      // Redis do not.
      const db = new URL(databaseUrl);
      adapter = createRedisAdapter(pub, sub, { key: `headbench#${db.host}${db.pathname}` });
      transport = 'redis';
    } else {
      // Its own small pool: one connection LISTENs for the adapter, the others NOTIFY.
      // The adapter's LISTEN client has no 'error' listener of its own and is never released; its 'end'
      // reconnects it.
      const pool = survivePostgresRestarts(new pg.Pool({ connectionString: databaseUrl, max: 3 }), {
        releaseLost: true,
      });
      closers.push(() => pool.end());
      const c = await pool.connect();
      try {
        // Two instances starting together: the lock keeps their CREATE TABLEs apart.
        await c.query('BEGIN');
        await c.query(`SELECT pg_advisory_xact_lock(hashtext('${ATTACHMENTS}'))`);
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA}`);
        await c.query(`CREATE TABLE IF NOT EXISTS ${ATTACHMENTS} (
          id bigserial UNIQUE, created_at timestamptz DEFAULT now(), payload bytea)`);
        await c.query('COMMIT');
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        c.release();
      }
      adapter = createPostgresAdapter(pool, {
        channelPrefix: 'headbench',
        tableName: ATTACHMENTS,
        errorHandler: (e) => console.error('[cluster] postgres adapter:', e.message),
      });
      transport = 'postgres';
    }
    return { transport, adapter, bus, leader, close };
  } catch (e) {
    await close();
    throw e;
  }
}

export { ClusterBus } from './bus.js';
export { ClusterLeader } from './leader.js';
