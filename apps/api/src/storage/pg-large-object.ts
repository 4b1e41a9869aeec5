// Artifact bytes as Postgres large objects: every API instance reads what any instance stored, with no
// shared filesystem. Bytes stream in and out in chunks (lo_put / lo_get), never whole in memory.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type pg from 'pg';
import { type ArtifactStore, TooLargeError } from '../services/artifacts.js';

/** Bytes per lo_put / lo_get round trip. */
const CHUNK = 1024 * 1024;
const INV_READ = 0x40000;

const oidOf = (uri: string): number => {
  const m = /^pg-lo:(\d{1,10})$/.exec(uri);
  if (!m) throw new Error(`not a Postgres large-object artifact: ${uri.slice(0, 80)}`);
  return Number(m[1]);
};

/** Node's "missing file" code, so downloads answer 404 for a missing object as for a missing file. */
function missing(uri: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`stored object ${uri} is missing`);
  e.code = 'ENOENT';
  return e;
}

export class PgLargeObjectStore implements ArtifactStore {
  /**
   * `legacy`: the store of URIs that are not large objects (artifacts stored before the switch), so
   * switching HEADBENCH_STORAGE to postgres loses nothing already stored.
   */
  constructor(
    private pool: pg.Pool,
    private legacy?: ArtifactStore,
  ) {}

  /**
   * One transaction: the object exists only once all of it is written, so a failed or oversized upload
   * (or a crash) leaves nothing behind. `key` is not needed: the URI names the object.
   */
  async put(_key: string, body: Readable, maxBytes: number) {
    const hash = createHash('sha256');
    let size = 0;
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const { rows } = await c.query<{ oid: number }>('SELECT lo_create(0)::int8 AS oid');
      const oid = Number(rows[0].oid);
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        if (!pendingBytes) return;
        const chunk = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
        pending = [];
        await c.query('SELECT lo_put($1::oid, $2::int8, $3::bytea)', [oid, size - pendingBytes, chunk]);
        pendingBytes = 0;
      };
      for await (const part of body) {
        const buf = typeof part === 'string' ? Buffer.from(part) : (part as Buffer);
        size += buf.length;
        if (size > maxBytes) throw new TooLargeError(`artifact exceeds ${maxBytes} bytes`);
        hash.update(buf);
        pending.push(buf);
        pendingBytes += buf.length;
        if (pendingBytes >= CHUNK) await flush();
      }
      await flush();
      await c.query('COMMIT');
      return { uri: `pg-lo:${oid}`, sha256: hash.digest('hex'), size };
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      body.resume(); // let the rest of a refused upload drain instead of stalling the socket
      throw e;
    } finally {
      c.release();
    }
  }

  async get(uri: string): Promise<Readable> {
    if (!uri.startsWith('pg-lo:') && this.legacy) return this.legacy.get(uri);
    const oid = oidOf(uri);
    const size = await this.size(oid);
    let at = 0;
    const pool = this.pool;
    // Pulled a chunk at a time: a slow client holds no connection between reads.
    return new Readable({
      highWaterMark: CHUNK,
      read() {
        if (size === null) return this.destroy(missing(uri));
        if (at >= size) return this.push(null);
        const len = Math.min(CHUNK, size - at);
        pool.query<{ b: Buffer }>('SELECT lo_get($1::oid, $2::int8, $3::int4) AS b', [oid, at, len]).then(
          ({ rows }) => {
            const b = rows[0].b;
            at += b.length;
            // The object was deleted or shortened while streaming: end with an error, not short data.
            if (!b.length) return this.destroy(missing(uri));
            this.push(b);
          },
          (e: { code?: string }) => this.destroy(e.code === '42704' ? missing(uri) : (e as Error)),
        );
      },
    });
  }

  async stat(uri: string) {
    if (!uri.startsWith('pg-lo:') && this.legacy) return this.legacy.stat(uri);
    const size = await this.size(oidOf(uri));
    return size === null ? null : { size };
  }

  async delete(uri: string) {
    if (!uri.startsWith('pg-lo:') && this.legacy) return this.legacy.delete(uri);
    // Only when it exists: deleting twice (two instances cleaning up) is not an error.
    await this.pool.query('SELECT lo_unlink(oid) FROM pg_largeobject_metadata WHERE oid = $1::oid', [
      oidOf(uri),
    ]);
  }

  /** Size in bytes, null when there is no such object. */
  private async size(oid: number): Promise<number | null> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const { rows } = await c.query<{ fd: number }>(
        `SELECT lo_open(oid, ${INV_READ}) AS fd FROM pg_largeobject_metadata WHERE oid = $1::oid`,
        [oid],
      );
      if (!rows[0]) return null;
      const end = await c.query<{ n: string }>('SELECT lo_lseek64($1, 0, 2) AS n', [rows[0].fd]);
      return Number(end.rows[0].n);
    } finally {
      await c.query('ROLLBACK').catch(() => {});
      c.release();
    }
  }
}
