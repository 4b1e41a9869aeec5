// What a lease carries besides the config: the registry record of the run's dataset and, for
// `weights: run:<id>`, that run's final model (raw SQL inside the lease transaction).
import type { LeasedDataset, LeasedRun } from '@headbench/spec';
import type pg from 'pg';

type Db = pg.Pool | pg.PoolClient;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The registry record a run's dataset URI refers to, with its uploaded archive when there is one. */
export async function leasedDataset(c: Db, uri: string): Promise<LeasedDataset | null> {
  const byName = uri.startsWith('dataset:');
  const { rows } = await c.query(
    `SELECT name, uri, content_hash, classes, archive_sha256, archive_size, archive_format FROM datasets
     WHERE ${byName ? 'name = $1' : 'uri = $1'} ORDER BY created_at LIMIT 1`,
    [byName ? uri.slice('dataset:'.length) : uri],
  );
  const d = rows[0];
  if (!d) return null;
  return {
    name: d.name,
    uri: d.uri,
    contentHash: d.content_hash,
    classes: d.classes ?? [],
    archive: d.archive_sha256
      ? {
          downloadPath: `/datasets/${encodeURIComponent(d.name)}/content`,
          sha256: d.archive_sha256,
          size: Number(d.archive_size),
          format: d.archive_format,
        }
      : null,
  };
}

/** The final model of run `id` (kind `model`, or `model.tar` from trainers that uploaded it as a report). */
export async function leasedWeights(c: Db, weights: string): Promise<LeasedRun['weights']> {
  if (!weights.startsWith('run:')) return null;
  const runId = weights.slice(4);
  if (!UUID_RE.test(runId)) return null;
  const { rows } = await c.query(
    `SELECT id, sha256, size FROM artifacts WHERE run_id = $1 AND (kind = 'model' OR name = 'model.tar')
     ORDER BY (kind = 'model') DESC, created_at DESC LIMIT 1`,
    [runId],
  );
  const a = rows[0];
  return a
    ? {
        runId,
        artifactId: a.id,
        downloadPath: `/artifacts/${a.id}/content`,
        sha256: a.sha256,
        size: Number(a.size),
      }
    : null;
}
