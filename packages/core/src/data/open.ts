import { join, resolve } from 'node:path';
import { HeadbenchInputError } from '../errors.js';
import type { ResizeKernel } from './decode.js';
import { type DirectoryOptions, openDirectoryDataset } from './directory.js';
import { FLOWER_CLASSES, generateFlowers } from './flowers.js';
import { openIdxDataset } from './idx.js';
import type { ImageDataset } from './types.js';

export interface OpenOptions {
  /** Where generated datasets are written (default `.headbench/datasets`). */
  cacheDir?: string;
  classes?: readonly string[];
  resize?: ResizeKernel;
}

/** What a dataset URI names, parsed. */
export type DatasetRef =
  | { kind: 'generated'; generator: 'flowers'; classes: number; perClass: number; size: number; seed: number }
  | { kind: 'idx'; images: string; labels: string }
  | { kind: 'directory'; path: string };

/**
 * Parse a dataset URI:
 * - `generated:flowers17` (optionally `?seed=0&size=224&perClass=80`; `flowersN` for N ≤ 17 classes)
 * - `idx:<images>,<labels>` (raw or .gz)
 * - a folder path (class folders, optionally under train/ and test/)
 */
export function parseDatasetUri(uri: string): DatasetRef {
  if (uri.startsWith('generated:')) {
    const [name, query = ''] = uri.slice('generated:'.length).split('?');
    const m = /^flowers(\d+)?$/.exec(name);
    if (!m)
      throw new HeadbenchInputError(
        `unknown generated dataset '${name}' (valid: flowers17, or flowersN with 2 ≤ N ≤ 17)`,
      );
    const params = new URLSearchParams(query);
    for (const key of params.keys()) {
      if (!['seed', 'size', 'perClass'].includes(key)) {
        throw new HeadbenchInputError(`unknown parameter '${key}' in ${uri} (valid: seed, size, perClass)`);
      }
    }
    const num = (key: string, fallback: number, min: number, max: number) => {
      const raw = params.get(key);
      const v = raw === null ? fallback : Number(raw);
      if (!Number.isInteger(v) || v < min || v > max) {
        throw new HeadbenchInputError(`${uri}: ${key} must be an integer in [${min}, ${max}], got '${raw}'`);
      }
      return v;
    };
    const classes = m[1] ? Number(m[1]) : FLOWER_CLASSES.length;
    if (classes < 2 || classes > FLOWER_CLASSES.length) {
      throw new HeadbenchInputError(
        `generated flowers has 2 to ${FLOWER_CLASSES.length} classes, got ${classes} in '${uri}'`,
      );
    }
    return {
      kind: 'generated',
      generator: 'flowers',
      classes,
      perClass: num('perClass', 80, 1, 100000),
      size: num('size', 224, 16, 1024),
      seed: num('seed', 0, 0, 2 ** 31 - 1),
    };
  }
  if (uri.startsWith('idx:')) {
    const parts = uri.slice(4).split(',');
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new HeadbenchInputError(`IDX dataset must be 'idx:<images file>,<labels file>', got '${uri}'`);
    }
    return { kind: 'idx', images: parts[0], labels: parts[1] };
  }
  return { kind: 'directory', path: uri };
}

export async function openDataset(uri: string, options: OpenOptions = {}): Promise<ImageDataset> {
  const ref = parseDatasetUri(uri);
  switch (ref.kind) {
    case 'generated': {
      const dir = join(
        resolve(options.cacheDir ?? '.headbench/datasets'),
        `flowers${ref.classes}-seed${ref.seed}-size${ref.size}-n${ref.perClass}`,
      );
      await generateFlowers(dir, ref);
      const ds = await openDirectoryDataset(dir, dirOptions(options));
      return { ...ds, name: `flowers${ref.classes}`, uri };
    }
    case 'idx':
      return openIdxDataset(ref.images, ref.labels, { classes: options.classes, resize: options.resize });
    case 'directory':
      return openDirectoryDataset(ref.path, dirOptions(options));
  }
}

function dirOptions(options: OpenOptions): DirectoryOptions {
  return { classes: options.classes, resize: options.resize };
}
