import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDeploy } from '../src/db/migrate.js';
import { MIGRATIONS_DIR } from '../src/main.js';
import { freshDatabase } from './helpers.js';

const run = promisify(execFile);
const apiDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const prismaCli = createRequire(import.meta.url).resolve('prisma/build/index.js');

/** The Prisma CLI, offline: its schema engine is our wasm-backed executable. */
function prisma(args: string[], databaseUrl: string) {
  return run(process.execPath, [prismaCli, ...args], {
    cwd: apiDir,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PRISMA_SCHEMA_ENGINE_BINARY: join(apiDir, 'tools/schema-engine.mjs'),
      PRISMA_HIDE_UPDATE_MESSAGE: '1',
      CHECKPOINT_DISABLE: '1',
    },
    timeout: 60_000,
  });
}

describe('migrations', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await freshDatabase();
    pool = new pg.Pool({ connectionString: db.url });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('applies the committed migrations to an empty database, once, with Prisma checksums', async () => {
    const names = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
    expect(names.length).toBeGreaterThan(0);
    const first = await migrateDeploy(pool, MIGRATIONS_DIR);
    expect(first.applied).toEqual(names.sort());
    const { rows: tables } = await pool.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
    );
    expect(tables.map((t) => t.table_name)).toEqual(
      expect.arrayContaining([
        'artifacts',
        'datasets',
        'metrics',
        'run_events',
        'runs',
        'sweeps',
        'tokens',
        'trainers',
        'users',
      ]),
    );
    const { rows } = await pool.query(
      `SELECT migration_name, checksum, finished_at FROM "_prisma_migrations"`,
    );
    for (const r of rows) {
      const sql = await readFile(join(MIGRATIONS_DIR, r.migration_name, 'migration.sql'));
      expect(r.checksum).toBe(createHash('sha256').update(sql).digest('hex'));
      expect(r.finished_at).not.toBeNull();
    }
    const again = await migrateDeploy(pool, MIGRATIONS_DIR);
    expect(again).toEqual({ applied: [], alreadyApplied: names.sort() });
  });

  it('agrees with the Prisma CLI (offline schema engine): status up to date, schema diff = committed SQL', async () => {
    const status = await prisma(['migrate', 'status'], db.url);
    expect(status.stdout).toMatch(/Database schema is up to date/);

    // The full schema renders to SQL (the engine's diff works offline).
    const { stdout } = await prisma(
      ['migrate', 'diff', '--from-empty', '--to-schema', '../../prisma/schema.prisma', '--script'],
      db.url,
    );
    expect(stdout).toMatch(/CREATE TABLE "runs"/);

    // The committed migrations, applied in order, give exactly the schema (guards against schema edits
    // without a migration): an empty diff.
    const live = await prisma(
      [
        'migrate',
        'diff',
        '--from-config-datasource',
        '--to-schema',
        '../../prisma/schema.prisma',
        '--exit-code',
      ],
      db.url,
    );
    expect(live.stdout).toMatch(/No difference detected/);
  });

  it('answers the CLI helper commands (create / can-connect / drop database)', async () => {
    const engine = join(apiDir, 'tools/schema-engine.mjs');
    const u = new URL(db.url);
    u.pathname = `/${db.name}_extra`;
    const ds = JSON.stringify({ url: u.toString() });
    await expect(
      run(process.execPath, [engine, '--datasource', ds, 'cli', 'can-connect-to-database']),
    ).rejects.toMatchObject({
      stderr: expect.stringContaining('P1003'),
    });
    await run(process.execPath, [engine, '--datasource', ds, 'cli', 'create-database']);
    await run(process.execPath, [engine, '--datasource', ds, 'cli', 'can-connect-to-database']);
    await run(process.execPath, [engine, '--datasource', ds, 'cli', 'drop-database']);
    const { stdout } = await run(process.execPath, [engine, '--version']);
    expect(stdout).toMatch(/^schema-engine-cli [0-9a-f]{40}/);
  });
});
