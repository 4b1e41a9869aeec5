// Turns a run's dataset URI into one `openDataset` reads here: generated, idx and local/shared paths as
// they are; http(s) archives (.zip, .tar.gz/.tgz, .tar) downloaded once, unpacked, checked against the
// dataset content hash when one is known, and cached by it; `dataset:<name>` looked up in the API's
// dataset registry.
import { createHash } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { LeasedDataset } from '@headbench/client';
import { HeadbenchInputError, openDataset } from '@headbench/core';
import type { ApiLink } from './api.js';
import { readTar, writeEntries } from './tar.js';
import { readZip } from './zip.js';

export interface DatasetRecord {
  name: string;
  uri: string;
  contentHash: string | null;
}

export interface ResolveContext {
  /** State folder: generated datasets and downloads live under `<home>/datasets`. */
  home: string;
  /**
   * The registry record the API sent with the lease (hash, uploaded archive): what the run needs.
   * `undefined` means an API that sends none; then `registry` (a member token) is asked instead.
   */
  leased?: LeasedDataset | null;
  /** The trainer's own link: uploaded archives are fetched through the API with the trainer token. */
  api?: ApiLink;
  /** Client for the dataset registry (older APIs only: needs a member or admin token). */
  registry?: ApiLink;
  log?: (m: string) => void;
}

const locks = new Map<string, Promise<unknown>>();
/** One preparation per key at a time in this process (two slots never download or generate the same set twice). */
async function once<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(key) ?? Promise.resolve();
  const run = prev.catch(() => {}).then(fn);
  locks.set(key, run);
  try {
    return await run;
  } finally {
    if (locks.get(key) === run) locks.delete(key);
  }
}

async function registry(ctx: ResolveContext): Promise<DatasetRecord[]> {
  if (!ctx.registry) return [];
  try {
    return (await ctx.registry.client.datasets.list.query()) as DatasetRecord[];
  } catch {
    return []; // trainer tokens are not allowed to list datasets: no hash to check against
  }
}

/** The local URI for `uri`, and the content hash it must have when the registry knows one. */
export async function resolveDataset(
  uri: string,
  ctx: ResolveContext,
): Promise<{ local: string; expectHash?: string }> {
  let target = uri;
  let expectHash: string | undefined;
  const leased = ctx.leased;
  if (uri.startsWith('dataset:')) {
    const name = uri.slice('dataset:'.length);
    const rec =
      leased !== undefined
        ? leased?.name === name
          ? leased
          : undefined
        : (await registry(ctx)).find((d) => d.name === name);
    if (!rec) throw new HeadbenchInputError(`dataset '${name}' is not registered with the API`);
    expectHash = rec.contentHash ?? undefined;
    if (leased?.archive) {
      const { archive } = leased;
      if (!ctx.api) throw new Error('uploaded dataset: no API link to fetch it');
      const api = ctx.api;
      const local = await once(`dl:${archive.sha256}`, () =>
        fetchArchive(
          `${name}.${archive.format}`,
          archive.sha256,
          expectHash,
          ctx,
          () => api.download(archive.downloadPath),
          archive.sha256,
        ),
      );
      return { local, expectHash };
    }
    target = rec.uri;
  } else if (leased && leased.uri === uri) {
    expectHash = leased.contentHash ?? undefined;
  }
  const fragment = /#(?:sha256|contentHash)=([0-9a-f]{16,64})$/i.exec(target);
  if (fragment) {
    expectHash = fragment[1].toLowerCase();
    target = target.slice(0, fragment.index);
  }
  if (!/^https?:\/\//.test(target)) return { local: target, expectHash };
  if (!expectHash && leased === undefined)
    expectHash = (await registry(ctx)).find((d) => d.uri === uri)?.contentHash ?? undefined;
  const local = await once(`dl:${target}`, () => download(target, expectHash, ctx));
  return { local, expectHash };
}

async function exists(p: string) {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function download(url: string, expectHash: string | undefined, ctx: ResolveContext): Promise<string> {
  const key = expectHash ?? `url-${createHash('sha256').update(url).digest('hex').slice(0, 24)}`;
  return fetchArchive(new URL(url).pathname.toLowerCase(), key, expectHash, ctx, async () => {
    const res = await fetch(url, { signal: AbortSignal.timeout(30 * 60_000) });
    if (!res.ok) throw new HeadbenchInputError(`dataset download ${url} failed: HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  });
}

/**
 * Fetches an archive once into `<home>/datasets/downloads/<key>`, checks its bytes' sha256 (uploaded
 * datasets) and the unpacked set's content hash when known, and unpacks it; later runs reuse the folder.
 */
async function fetchArchive(
  name: string,
  key: string,
  expectHash: string | undefined,
  ctx: ResolveContext,
  fetchBytes: () => Promise<Buffer>,
  expectSha256?: string,
): Promise<string> {
  const url = name;
  const dir = join(ctx.home, 'datasets', 'downloads', key);
  if (await exists(join(dir, '.complete'))) return await datasetRoot(dir);
  ctx.log?.(`downloading ${name}`);
  const buf = await fetchBytes();
  if (expectSha256) {
    const got = createHash('sha256').update(buf).digest('hex');
    if (got !== expectSha256)
      throw new Error(`dataset ${name}: archive sha256 ${got} is not the expected ${expectSha256}`);
  }
  const path = name.toLowerCase();
  let entries: { path: string; data: Buffer }[];
  if (path.endsWith('.zip')) entries = readZip(buf);
  else if (path.endsWith('.tar.gz') || path.endsWith('.tgz')) entries = readTar(gunzipSync(buf));
  else if (path.endsWith('.tar')) entries = readTar(buf);
  else throw new HeadbenchInputError(`dataset URL ${url}: expected a .zip, .tar.gz, .tgz or .tar archive`);
  const tmp = `${dir}.${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await writeEntries(
    entries.filter((e) => !e.path.split('/').some((s) => s === '__MACOSX' || s.startsWith('._'))),
    tmp,
  );
  const rootDir = await datasetRoot(tmp);
  if (expectHash) {
    const ds = await openDataset(rootDir);
    if (ds.contentHash !== expectHash) {
      await rm(tmp, { recursive: true, force: true });
      throw new HeadbenchInputError(
        `dataset ${url}: content hash ${ds.contentHash} does not match the expected ${expectHash}`,
      );
    }
  }
  await writeFile(join(tmp, '.complete'), url);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return await datasetRoot(dir);
}

/** Archives often wrap the class folders in one top folder: descend through single-folder levels. */
async function datasetRoot(dir: string): Promise<string> {
  let cur = dir;
  for (;;) {
    const items = (await readdir(cur, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
    if (items.length === 1 && items[0].isDirectory() && !['train', 'test'].includes(items[0].name)) {
      cur = join(cur, items[0].name);
    } else return cur;
  }
}

/** Opens (and, for generated sets, writes) the dataset once, so a broken URI fails before a child starts. */
export async function prepareDataset(
  local: string,
  classes: string[] | undefined,
  ctx: ResolveContext,
  expectHash?: string,
) {
  return once(`open:${local}`, async () => {
    const ds = await openDataset(local, { cacheDir: join(ctx.home, 'datasets'), classes });
    if (expectHash && ds.contentHash !== expectHash) {
      throw new HeadbenchInputError(
        `dataset ${local}: content hash ${ds.contentHash} is not the expected ${expectHash}`,
      );
    }
    return ds;
  });
}
