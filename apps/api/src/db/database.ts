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

/** `poolSize`: connections of the main pool (env HEADBENCH_DB_POOL). */
export function openDatabase(url: string, poolSize = 20): Database {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  pool.on('error', () => {}); // idle-client errors (server restart) surface on the next query instead
  const ingestPool = new pg.Pool({ connectionString: url, max: 10 });
  ingestPool.on('error', () => {});
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
