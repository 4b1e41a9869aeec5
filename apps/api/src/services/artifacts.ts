import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArtifactInfo, ArtifactKind } from '@headbench/spec';
import { TRPCError } from '@trpc/server';
import type pg from 'pg';
import type { Principal } from '../auth.js';
import { withTx } from '../db/database.js';
import type { RunService } from './runs.js';

/** Where artifact bytes live. The filesystem store is the default; an S3-compatible one implements the same. */
export interface ArtifactStore {
  /** Streams `body` to `key`; rejects (storing nothing) past maxBytes. Returns the URI, sha256 and size. */
  put(key: string, body: Readable, maxBytes: number): Promise<{ uri: string; sha256: string; size: number }>;
  get(uri: string): Promise<Readable>;
  stat(uri: string): Promise<{ size: number } | null>;
  delete(uri: string): Promise<void>;
}

export class TooLargeError extends Error {}

export class FsArtifactStore implements ArtifactStore {
  constructor(readonly root: string) {}

  private path(uri: string) {
    if (!uri.startsWith('file:')) throw new Error(`not a file artifact: ${uri}`);
    const p = resolve(this.root, uri.slice('file:'.length));
    if (!p.startsWith(resolve(this.root) + sep)) throw new Error('artifact path escapes the store');
    return p;
  }

  async put(key: string, body: Readable, maxBytes: number) {
    const uri = `file:${key}`;
    const final = this.path(uri);
    await mkdir(dirname(final), { recursive: true });
    const tmp = `${final}.${process.pid}.${Date.now()}.part`;
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > maxBytes) return cb(new TooLargeError(`artifact exceeds ${maxBytes} bytes`));
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(body, meter, createWriteStream(tmp));
      await rename(tmp, final); // readers never see a half-written file
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return { uri, sha256: hash.digest('hex'), size };
  }

  async get(uri: string) {
    return createReadStream(this.path(uri));
  }

  async stat(uri: string) {
    try {
      return { size: (await stat(this.path(uri))).size };
    } catch {
      return null;
    }
  }

  async delete(uri: string) {
    await rm(this.path(uri), { force: true });
  }
}

/**
 * One folder per lease (attempt) and one file per upload: no upload ever overwrites a file a record points
 * at; the replaced file is deleted once the new record is committed.
 */
export const leaseArtifactKey = (runId: string, leaseId: string, name: string) =>
  join(runId, leaseId, `${randomUUID()}-${name}`);
/** Uploaded dataset archives live beside run artifacts, one file per upload. */
export const datasetKey = (id: string, format: string) => join('_datasets', `${id}.${format}`);

const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  svg: 'image/svg+xml',
  webp: 'image/webp',
  json: 'application/json',
  jsonl: 'application/x-ndjson',
  md: 'text/markdown; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  html: 'text/html; charset=utf-8',
  tar: 'application/x-tar',
  tgz: 'application/gzip',
  gz: 'application/gzip',
  zip: 'application/zip',
  bin: 'application/octet-stream',
};
/** Content type from a file name's extension (octet-stream when unknown). */
export function contentTypeOf(name: string): string {
  const ext = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase();
  return (ext && CONTENT_TYPES[ext]) || 'application/octet-stream';
}

const NAME_RE = /^[\w.-]{1,200}$/;

interface ArtifactRow {
  id: string;
  run_id: string;
  kind: ArtifactKind;
  name: string;
  uri: string;
  sha256: string;
  size: string;
  epoch: number | null;
  created_at: Date;
}

export const toArtifactInfo = (r: ArtifactRow): ArtifactInfo => ({
  id: r.id,
  runId: r.run_id,
  kind: r.kind,
  name: r.name,
  sha256: r.sha256,
  size: Number(r.size),
  epoch: r.epoch,
  createdAt: r.created_at.toISOString(),
  downloadPath: `/artifacts/${r.id}/content`,
});

export class ArtifactService {
  constructor(
    private pool: pg.Pool,
    private runs: RunService,
    readonly store: ArtifactStore,
    public maxBytes: number,
  ) {}

  /**
   * Stores an artifact of a held run. The lease is checked twice: before the bytes (a stale trainer is
   * refused at once) and again, with the run row locked, when the upload is committed, since a lease can
   * be lost while the bytes stream in. Each upload writes a new file, so a trainer that lost its lease
   * never overwrites the file the run's record (its resume point) points at.
   */
  async upload(
    p: Principal,
    a: { runId: string; leaseId: string; name: string; kind: ArtifactKind; epoch?: number },
    body: Readable,
  ): Promise<ArtifactInfo> {
    if (!NAME_RE.test(a.name))
      throw new TRPCError({ code: 'BAD_REQUEST', message: 'name: letters, digits and . - _ only' });
    await this.runs.assertHolder(this.pool, p, a.runId, a.leaseId);
    let stored: { uri: string; sha256: string; size: number };
    try {
      stored = await this.store.put(leaseArtifactKey(a.runId, a.leaseId, a.name), body, this.maxBytes);
    } catch (e) {
      if (e instanceof TooLargeError) throw new TRPCError({ code: 'PAYLOAD_TOO_LARGE', message: e.message });
      throw e;
    }
    let committed: { art: ArtifactRow; previous: string | null };
    try {
      committed = await withTx(this.pool, async (c) => {
        await this.runs.assertHolder(c, p, a.runId, a.leaseId, true);
        const { rows: before } = await c.query<{ uri: string }>(
          'SELECT uri FROM artifacts WHERE run_id = $1 AND name = $2 FOR UPDATE',
          [a.runId, a.name],
        );
        const { rows } = await c.query<ArtifactRow>(
          `INSERT INTO artifacts (id, run_id, kind, name, uri, sha256, size, epoch)
           VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (run_id, name) DO UPDATE SET kind = EXCLUDED.kind, uri = EXCLUDED.uri, sha256 = EXCLUDED.sha256,
             size = EXCLUDED.size, epoch = EXCLUDED.epoch, created_at = now()
           RETURNING *`,
          [a.runId, a.kind, a.name, stored.uri, stored.sha256, stored.size, a.epoch ?? null],
        );
        const art = rows[0];
        if (a.kind === 'checkpoint') {
          // The newest checkpoint is where a requeued attempt resumes.
          await c.query(
            `UPDATE runs SET checkpoint_artifact_id = $2, checkpoint_epoch = $3
             WHERE id = $1 AND (checkpoint_epoch IS NULL OR checkpoint_epoch <= $3)`,
            [a.runId, art.id, a.epoch ?? 0],
          );
          await c.query(
            `INSERT INTO run_events (run_id, type, attempt, data) SELECT id, 'checkpoint', attempt, $2 FROM runs WHERE id = $1`,
            [a.runId, JSON.stringify({ artifactId: art.id, epoch: a.epoch ?? 0 })],
          );
        }
        return { art, previous: before[0]?.uri ?? null };
      });
    } catch (e) {
      await this.store.delete(stored.uri).catch(() => {});
      throw e;
    }
    // The replaced file (an earlier attempt's): a download that already opened it still reads it to the end.
    if (committed.previous && committed.previous !== stored.uri)
      await this.store.delete(committed.previous).catch(() => {});
    return toArtifactInfo(committed.art);
  }

  /**
   * May this trainer token read artifact `a`? Yes for artifacts of runs it holds (checkpoints to resume),
   * and for the final model of a run referenced as `weights: run:<id>` by a run it holds; nothing else.
   */
  async trainerMayRead(p: Principal, a: ArtifactRow): Promise<boolean> {
    const { rows } = await this.pool.query(
      `SELECT 1 FROM runs r JOIN trainers t ON t.id = r.trainer_id
       WHERE r.status = 'running' AND t.token_id = $2
         AND (r.id = $1 OR ($3 AND r.config->>'weights' = 'run:' || $1::text))
       LIMIT 1`,
      [a.run_id, p.tokenId, a.kind === 'model' || a.name === 'model.tar'],
    );
    return rows.length > 0;
  }

  async get(id: string): Promise<ArtifactRow | null> {
    const { rows } = await this.pool.query<ArtifactRow>('SELECT * FROM artifacts WHERE id = $1', [id]);
    return rows[0] ?? null;
  }

  async list(runId: string, kind?: ArtifactKind): Promise<ArtifactInfo[]> {
    const { rows } = await this.pool.query<ArtifactRow>(
      `SELECT * FROM artifacts WHERE run_id = $1 AND ($2::"ArtifactKind" IS NULL OR kind = $2) ORDER BY created_at`,
      [runId, kind ?? null],
    );
    return rows.map(toArtifactInfo);
  }
}
