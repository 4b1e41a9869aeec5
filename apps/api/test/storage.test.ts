// Both artifact stores on real parts (a directory, Postgres large objects): bytes stream in and out
// unchanged, sha256 and size are what was sent, oversized uploads store nothing, missing objects read as
// ENOENT (a 404 for downloads), and the Postgres store still serves what the directory store holds.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ArtifactStore, FsArtifactStore, TooLargeError } from '../src/services/artifacts.js';
import { openArtifactStore, PgLargeObjectStore } from '../src/storage/index.js';
import { freshDatabase } from './helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `total` bytes in uneven pieces, as a request body arrives. */
function body(data: Buffer, piece = 70_001): Readable {
  const parts: Buffer[] = [];
  for (let at = 0; at < data.length; at += piece) parts.push(data.subarray(at, at + piece));
  return Readable.from(parts);
}

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of r) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

let db: Awaited<ReturnType<typeof freshDatabase>>;
let pool: pg.Pool;
let dir: string;

beforeAll(async () => {
  db = await freshDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  dir = await mkdtemp(join(tmpdir(), 'headbench-store-'));
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
  await rm(dir, { recursive: true, force: true });
});

const stores: [string, () => ArtifactStore][] = [
  ['local directory', () => new FsArtifactStore(join(dir, 'local'))],
  ['Postgres large objects', () => new PgLargeObjectStore(pool)],
];

describe.each(stores)('%s store', (_name, make) => {
  it('streams bytes in and out unchanged, with their sha256 and size', async () => {
    const store = make();
    // Over two chunks of the large-object store (1 MiB), not a multiple of either piece size.
    const data = randomBytes(2 * 1024 * 1024 + 12_345);
    const put = await store.put('run-a/checkpoint.tar', body(data), 10 * 1024 * 1024);
    expect(put).toMatchObject({ sha256: sha(data), size: data.length });
    expect(await store.stat(put.uri)).toEqual({ size: data.length });
    const back = await readAll(await store.get(put.uri));
    expect(sha(back)).toBe(sha(data));
    expect(back.length).toBe(data.length);

    const empty = await store.put('run-a/empty.txt', body(Buffer.alloc(0)), 10);
    expect(empty).toMatchObject({ sha256: sha(Buffer.alloc(0)), size: 0 });
    expect((await readAll(await store.get(empty.uri))).length).toBe(0);
  });

  it('refuses an upload past the limit and stores nothing', async () => {
    const store = make();
    const objects = await countLargeObjects();
    await expect(store.put('run-b/big.bin', body(randomBytes(300_000)), 200_000)).rejects.toBeInstanceOf(
      TooLargeError,
    );
    expect(await countLargeObjects()).toBe(objects);
  });

  it('deletes, and a deleted object reads as missing (ENOENT)', async () => {
    const store = make();
    const put = await store.put('run-c/a.json', body(Buffer.from('{"a":1}')), 100);
    await store.delete(put.uri);
    await store.delete(put.uri); // twice (two instances cleaning up) is not an error
    expect(await store.stat(put.uri)).toBeNull();
    const err = await readAll(await store.get(put.uri)).catch((e) => e);
    expect(err).toMatchObject({ code: 'ENOENT' });
  });
});

describe('switching to the Postgres store', () => {
  it('keeps serving what the directory store holds', async () => {
    const localDir = join(dir, 'switch');
    const before = await new FsArtifactStore(localDir).put('run-d/model.tar', body(Buffer.from('old')), 100);
    const store = openArtifactStore('postgres', localDir, pool);
    expect((await readAll(await store.get(before.uri))).toString()).toBe('old');
    const after = await store.put('run-d/model.tar', body(Buffer.from('new')), 100);
    expect(after.uri).toMatch(/^pg-lo:\d+$/);
    expect((await readAll(await store.get(after.uri))).toString()).toBe('new');
  });

  it('names a URI it cannot read instead of guessing', async () => {
    await expect(new PgLargeObjectStore(pool).get('file:x/../../etc/passwd')).rejects.toThrow(
      /not a Postgres large-object artifact/,
    );
  });
});

async function countLargeObjects(): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_largeobject_metadata');
  return rows[0].n;
}
