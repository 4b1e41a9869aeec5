import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';

export type Prisma = InstanceType<typeof PrismaClient>;

export interface Database {
  /** Shared pool: Prisma (through adapter-pg), raw SQL for hot paths, and pg-boss. */
  pool: pg.Pool;
  /**
   * Metric ingest only, so bursts of points never starve the queue and the dashboards of connections.
   * Commits wait for the WAL flush like every other: trainers drop points once acknowledged, so an
   * acknowledged point must survive a Postgres crash (group commit keeps the cost low, see bench/api).
   */
  ingestPool: pg.Pool;
  prisma: Prisma;
  url: string;
  close(): Promise<void>;
}

/**
 * A pool whose connections' errors (Postgres restarted or killed) surface on their next query instead of
 * killing the process: pg-pool listens for errors only on idle clients, and a checked-out one (a transaction
 * between statements, a LISTEN connection) would raise an uncaught 'error' event.
 */
export function survivePostgresRestarts(pool: pg.Pool, opts: { releaseLost?: boolean } = {}): pg.Pool {
  pool.on('error', () => {});
  const out = new Set<pg.PoolClient>();
  pool.on('acquire', (c) => out.add(c));
  pool.on('release', (_e, c) => out.delete(c));
  pool.on('connect', (c) =>
    c.on('error', (e) => {
      // For holders that never release a client they hold (socket.io's adapter keeps its LISTEN client
      // until close): give the dead one back, or pool.end() would wait for it for ever.
      if (opts.releaseLost && out.delete(c as pg.PoolClient)) (c as pg.PoolClient).release(e);
    }),
  );
  return pool;
}

/** `poolSize`: connections of the main pool (env HEADBENCH_DB_POOL). */
export function openDatabase(url: string, poolSize = 20): Database {
  const pool = survivePostgresRestarts(new pg.Pool({ connectionString: url, max: poolSize }));
  const ingestPool = survivePostgresRestarts(new pg.Pool({ connectionString: url, max: 10 }));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    pool,
    ingestPool,
    prisma,
    url,
    async close() {
      await prisma.$disconnect();
      await pool.end();
      await ingestPool.end();
    },
  };
}

/** Runs fn in one transaction on one pooled connection. */
export async function withTx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}
