import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { HeadbenchInputError } from '../errors.js';
import { decodeImage, probeImage, type ResizeKernel } from './decode.js';
import type { ImageDataset, ImageSize, PredefinedSplit, SkippedFile } from './types.js';

export interface DirectoryOptions {
  /** Fix the label order (as Keras `flow_from_directory(classes=...)`); default: sorted folder names. */
  classes?: readonly string[];
  /** Resize kernel used by `read`. */
  resize?: ResizeKernel;
  /** Files probed at once while scanning. */
  concurrency?: number;
}

interface FileEntry {
  path: string;
  rel: string;
  label: number;
  digest: string;
  part: 'all' | 'train' | 'test';
}

/**
 * Open a class-folder tree: `root/<class>/<image>` or `root/{train,test}/<class>/<image>`.
 * Every file is read once to hash it and check its header; unusable files go to `skipped`.
 */
export async function openDirectoryDataset(
  root: string,
  options: DirectoryOptions = {},
): Promise<ImageDataset> {
  const abs = resolve(root);
  const rootStat = await stat(abs).catch(() => undefined);
  if (!rootStat) throw new HeadbenchInputError(`dataset folder does not exist: ${abs}`, abs);
  if (!rootStat.isDirectory()) throw new HeadbenchInputError(`dataset path is not a folder: ${abs}`, abs);

  const top = await listDirs(abs);
  const hasSplitTrees = top.includes('train') && top.includes('test');
  const parts: Array<{ part: FileEntry['part']; dir: string }> = hasSplitTrees
    ? [
        { part: 'train', dir: join(abs, 'train') },
        { part: 'test', dir: join(abs, 'test') },
      ]
    : [{ part: 'all', dir: abs }];

  const firstDirs = await listDirs(parts[0].dir);
  const classes = options.classes ? [...options.classes] : firstDirs;
  if (classes.length === 0) {
    throw new HeadbenchInputError(
      `no class folders in ${parts[0].dir} (expected one sub-folder per class)`,
      parts[0].dir,
    );
  }
  const dup = classes.find((c, i) => classes.indexOf(c) !== i);
  if (dup) throw new HeadbenchInputError(`class '${dup}' is listed twice`, abs);

  const skipped: SkippedFile[] = [];
  const files: FileEntry[] = [];
  for (const { part, dir } of parts) {
    const present = await listDirs(dir);
    for (const name of present) {
      if (!classes.includes(name))
        skipped.push({ path: join(dir, name), reason: 'folder is not in the classes list' });
    }
    for (const [label, cls] of classes.entries()) {
      const classDir = join(dir, cls);
      if (!present.includes(cls)) {
        throw new HeadbenchInputError(
          `class '${cls}' has no folder: ${classDir} does not exist${options.classes ? ' (unknown class name)' : ''}`,
          classDir,
        );
      }
      const names = (await readdir(classDir, { withFileTypes: true }))
        .filter((d) => d.isFile() || d.isSymbolicLink())
        .map((d) => d.name)
        .sort();
      const before = files.length;
      await mapPool(names, options.concurrency ?? 16, async (name) => {
        const path = join(classDir, name);
        const bytes = await readFile(path).catch((err: Error) => err);
        if (bytes instanceof Error) {
          skipped.push({ path, reason: `unreadable: ${bytes.message}` });
          return;
        }
        const problem = await probeImage(bytes);
        if (problem) {
          skipped.push({ path, reason: problem });
          return;
        }
        files.push({
          path,
          rel: relative(abs, path),
          label,
          digest: createHash('sha256').update(bytes).digest('hex'),
          part,
        });
      });
      if (files.length === before) {
        throw new HeadbenchInputError(`class '${cls}' is empty: no usable images in ${classDir}`, classDir);
      }
    }
  }
  // Pool completion order is not deterministic; sort so labels, indices and the hash are.
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  skipped.sort((a, b) => (a.path < b.path ? -1 : 1));

  const hash = createHash('sha256');
  hash.update(`classes:${classes.join('\u0000')}\n`);
  for (const f of files) hash.update(`${f.rel}\u0000${f.digest}\n`);

  let predefinedSplit: PredefinedSplit | undefined;
  if (hasSplitTrees) {
    predefinedSplit = { train: [], test: [] };
    for (const [i, f] of files.entries()) predefinedSplit[f.part as 'train' | 'test'].push(i);
  }

  const kernel = options.resize ?? 'linear';
  return {
    name: basename(abs),
    uri: abs,
    classes,
    size: files.length,
    labels: Int32Array.from(files.map((f) => f.label)),
    sources: files.map((f) => f.path),
    skipped,
    contentHash: hash.digest('hex'),
    predefinedSplit,
    read: (index: number, size: ImageSize) => decodeImage(files[index].path, size, kernel),
  };
}

async function listDirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((err: Error) => {
    throw new HeadbenchInputError(`cannot read folder ${dir}: ${err.message}`, dir);
  });
  return entries
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
}

/** Run `fn` over `items` with at most `limit` in flight. */
export async function mapPool<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
) {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}
