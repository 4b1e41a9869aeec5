// Where artifact and dataset bytes live, chosen by HEADBENCH_STORAGE: a local directory (one shared
// volume mounted by every instance is valid) or Postgres large objects (no shared filesystem needed).
import type pg from 'pg';
import { type ArtifactStore, FsArtifactStore } from '../services/artifacts.js';
import { PgLargeObjectStore } from './pg-large-object.js';

export type StorageKind = 'local' | 'postgres';

export function openArtifactStore(kind: StorageKind, dir: string, pool: pg.Pool): ArtifactStore {
  const local = new FsArtifactStore(dir);
  // Postgres keeps reading what the directory store holds (artifacts stored before the switch).
  return kind === 'postgres' ? new PgLargeObjectStore(pool, local) : local;
}

export { PgLargeObjectStore } from './pg-large-object.js';
