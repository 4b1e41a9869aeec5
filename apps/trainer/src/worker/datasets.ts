// Turns a run's dataset URI into one `openDataset` reads here: generated, idx and local/shared paths as
// they are; http(s) archives (.zip, .tar.gz/.tgz, .tar) downloaded once, unpacked, checked against the
// dataset content hash when one is known, and cached by it; `dataset:<name>` looked up in the API's
// dataset registry.
import { createHash } from 'node:crypto';
import { readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LeasedDataset } from '@headbench/client';
import { HeadbenchInputError, openDataset, parseDatasetUri } from '@headbench/core';
import { type AccessPolicy, allowedLocalPath, downloadToFile } from './access.js';
import type { ApiLink } from './api.js';
import { archiveFormat, unpackArchive } from './unpack.js';

export interface DatasetRecord {
  name: string;
  uri: string;
  contentHash: string | null;
}

export interface ResolveContext {
  /** What this trainer may read and fetch. */
  policy: AccessPolicy;
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

/** A local dataset URI whose files lie under the policy's roots (generated sets are written, not read). */
async function allowedDataset(uri: string, policy: AccessPolicy): Promise<string> {
  const ref = parseDatasetUri(uri);
  if (ref.kind === 'generated') return uri;
  if (ref.kind === 'idx') {
    const images = await allowedLocalPath(ref.images, policy, 'dataset file');
    const labels = await allowedLocalPath(ref.labels, policy, 'dataset file');
    return `idx:${images},${labels}`;
  }
  return allowedLocalPath(ref.path, policy, 'dataset folder');
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
          (file) => api.downloadTo(archive.downloadPath, file, ctx.policy, `dataset ${name}`),
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
  if (!/^https?:\/\//.test(target)) return { local: await allowedDataset(target, ctx.policy), expectHash };
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
  const name = new URL(url).pathname.split('/').pop() || 'archive';
  return fetchArchive(name, key, expectHash, ctx, (file) =>
    downloadToFile(url, file, ctx.policy, { what: `dataset ${name}`, log: ctx.log }),
  );
}

/**
 * Fetches an archive once into `<home>/datasets/downloads/<key>`, streamed to disk under the download cap,
 * checks its bytes' sha256 (uploaded datasets) and the unpacked set's content hash when known, and unpacks
 * it under the archive limits off the event loop; later runs reuse the folder.
 */
async function fetchArchive(
  name: string,
  key: string,
  expectHash: string | undefined,
  ctx: ResolveContext,
  fetchTo: (file: string) => Promise<{ sha256: string; size: number }>,
  expectSha256?: string,
): Promise<string> {
  // Known before a byte is fetched: what is not an archive is not downloaded.
  const format = archiveFormat(name);
  if (!format)
    throw new HeadbenchInputError(
      `dataset ${name}: expected a .zip, .tar.gz, .tgz or .tar archive (or a folder this trainer may read)`,
    );
  const dir = join(ctx.home, 'datasets', 'downloads', key);
  if (await exists(join(dir, '.complete'))) return await datasetRoot(dir);
  ctx.log?.(`downloading ${name}`);
  const file = `${dir}.archive`;
  const tmp = `${dir}.${process.pid}.tmp`;
  try {
    const got = await fetchTo(file);
    if (expectSha256 && got.sha256 !== expectSha256)
      throw new Error(`dataset ${name}: archive sha256 ${got.sha256} is not the expected ${expectSha256}`);
    await rm(tmp, { recursive: true, force: true });
    await unpackArchive({
      file,
      format,
      dest: tmp,
      limits: { maxBytes: ctx.policy.maxUnpackedBytes },
      label: `dataset ${name}`,
    });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    await rm(file, { force: true });
  }
  const rootDir = await datasetRoot(tmp);
  if (expectHash) {
    const ds = await openDataset(rootDir);
    if (ds.contentHash !== expectHash) {
      await rm(tmp, { recursive: true, force: true });
      throw new HeadbenchInputError(
        `dataset ${name}: content hash ${ds.contentHash} does not match the expected ${expectHash}`,
      );
    }
  }
  await writeFile(join(tmp, '.complete'), name);
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
