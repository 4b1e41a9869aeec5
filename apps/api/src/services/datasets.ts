import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { DatasetFormat, DatasetInfo } from '@headbench/spec';
import { TRPCError } from '@trpc/server';
import type pg from 'pg';
import type { Principal } from '../auth.js';
import { type ArtifactStore, datasetKey, TooLargeError } from './artifacts.js';

export const DATASET_NAME_RE = /^[\w.\-:@]{1,128}$/;

const taken = (name: string) =>
  new TRPCError({
    code: 'CONFLICT',
    message: `dataset ${name} is already registered, and datasets never change: register the new version under a new name (e.g. ${name}@2)`,
  });

export interface DatasetArchiveRow {
  name: string;
  archive_uri: string | null;
  archive_format: DatasetFormat | null;
  archive_sha256: string | null;
  archive_size: string | null;
}

interface DatasetRow {
  id: string;
  archive_uri: string | null;
  name: string;
  uri: string;
  content_hash: string | null;
  classes: string[] | null;
  train_count: number | null;
  test_count: number | null;
  archive_format: DatasetFormat | null;
  archive_sha256: string | null;
  archive_size: string | null;
  created_at: Date;
}

const toDatasetInfo = (d: DatasetRow): DatasetInfo => ({
  id: d.id,
  name: d.name,
  uri: d.uri,
  contentHash: d.content_hash,
  classes: d.classes ?? [],
  trainCount: d.train_count,
  testCount: d.test_count,
  archive:
    d.archive_sha256 && d.archive_format
      ? {
          format: d.archive_format,
          sha256: d.archive_sha256,
          size: Number(d.archive_size),
          downloadPath: `/datasets/${encodeURIComponent(d.name)}/content`,
        }
      : null,
  createdAt: d.created_at.toISOString(),
});

/**
 * The dataset registry (SQL, like the upload path that writes the same rows). Uploaded datasets: the archive's bytes go to the artifact store (hashed on the way in, size-limited)
 * and the registry row points at them, so trainers fetch the set through the API with their own token.
 */
export class DatasetService {
  constructor(
    private pool: pg.Pool,
    readonly store: ArtifactStore,
    public maxBytes: number,
  ) {}

  /**
   * A registered dataset never changes (trainers trust its content hash, and runs name it): a new
   * version is a new name, e.g. `flowers@2`. An existing name is refused before any byte is read.
   */
  async upload(
    name: string,
    meta: { format: DatasetFormat; contentHash?: string; classes?: string[] },
    body: Readable,
  ) {
    if (!DATASET_NAME_RE.test(name))
      throw new TRPCError({ code: 'BAD_REQUEST', message: 'name: letters, digits and . - _ : @ only' });
    if (await this.get(name)) throw taken(name);
    let stored: { uri: string; sha256: string; size: number };
    try {
      stored = await this.store.put(datasetKey(randomUUID(), meta.format), body, this.maxBytes);
    } catch (e) {
      if (e instanceof TooLargeError)
        throw new TRPCError({ code: 'PAYLOAD_TOO_LARGE', message: `dataset exceeds ${this.maxBytes} bytes` });
      throw e;
    }
    const uri = `api:/datasets/${encodeURIComponent(name)}/content`;
    const { rows } = await this.pool.query(
      `INSERT INTO datasets (id, name, uri, content_hash, classes, archive_uri, archive_format, archive_sha256, archive_size)
       VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (name) DO NOTHING
       RETURNING id`,
      [
        name,
        uri,
        meta.contentHash ?? null,
        meta.classes ?? [],
        stored.uri,
        meta.format,
        stored.sha256,
        stored.size,
      ],
    );
    if (!rows[0]) {
      // Registered by someone else while these bytes streamed in.
      await this.store.delete(stored.uri).catch(() => {});
      throw taken(name);
    }
    return {
      id: rows[0].id as string,
      name,
      uri,
      contentHash: meta.contentHash ?? null,
      archive: {
        format: meta.format,
        sha256: stored.sha256,
        size: stored.size,
        downloadPath: `/datasets/${encodeURIComponent(name)}/content`,
      },
    };
  }

  /**
   * Registers a dataset URI under a new name, with what is known about it. Registering the same record
   * again is a no-op; a different one under a taken name is refused (409): datasets are immutable.
   */
  async register(input: {
    name: string;
    uri: string;
    contentHash?: string;
    classes: string[];
    trainCount?: number;
    testCount?: number;
  }): Promise<DatasetInfo> {
    const { rows } = await this.pool.query<DatasetRow>(
      `INSERT INTO datasets (id, name, uri, content_hash, classes, train_count, test_count)
       VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, $6)
       ON CONFLICT (name) DO NOTHING
       RETURNING *`,
      [
        input.name,
        input.uri,
        input.contentHash ?? null,
        input.classes,
        input.trainCount ?? null,
        input.testCount ?? null,
      ],
    );
    if (rows[0]) return toDatasetInfo(rows[0]);
    const { rows: existing } = await this.pool.query<DatasetRow>('SELECT * FROM datasets WHERE name = $1', [
      input.name,
    ]);
    const d = existing[0];
    const same =
      d &&
      !d.archive_uri &&
      d.uri === input.uri &&
      d.content_hash === (input.contentHash ?? null) &&
      JSON.stringify(d.classes ?? []) === JSON.stringify(input.classes) &&
      d.train_count === (input.trainCount ?? null) &&
      d.test_count === (input.testCount ?? null);
    if (same) return toDatasetInfo(d);
    throw taken(input.name);
  }

  async list(): Promise<DatasetInfo[]> {
    const { rows } = await this.pool.query<DatasetRow>('SELECT * FROM datasets ORDER BY name');
    return rows.map(toDatasetInfo);
  }

  async get(name: string): Promise<DatasetArchiveRow | null> {
    const { rows } = await this.pool.query<DatasetArchiveRow>(
      'SELECT name, archive_uri, archive_format, archive_sha256, archive_size FROM datasets WHERE name = $1',
      [name],
    );
    return rows[0] ?? null;
  }

  /** Trainer tokens read a dataset only while they hold a run that uses it (`dataset:<name>` or its URI). */
  async trainerMayRead(p: Principal, name: string): Promise<boolean> {
    const { rows } = await this.pool.query(
      `SELECT 1 FROM runs r JOIN trainers t ON t.id = r.trainer_id
       WHERE r.status = 'running' AND t.token_id = $2
         AND (r.config->>'dataset' = 'dataset:' || $1::text
              OR r.config->>'dataset' = (SELECT uri FROM datasets WHERE name = $1))
       LIMIT 1`,
      [name, p.tokenId],
    );
    return rows.length > 0;
  }
}
