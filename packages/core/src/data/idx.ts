import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { HeadbenchInputError } from '../errors.js';
import { type ResizeKernel, resizeRaw } from './decode.js';
import type { ImageDataset, ImageSize } from './types.js';

/** A parsed IDX array (the MNIST file format): unsigned bytes with dimensions. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

/** Parse IDX bytes (raw or gzip). Only the unsigned-byte type, which image and label files use. */
export function parseIdx(bytes: Uint8Array, path = '<buffer>'): IdxArray {
  let buf = bytes;
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (err) {
      throw new HeadbenchInputError(`${path}: corrupt gzip data: ${(err as Error).message}`, path);
    }
  }
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) {
    throw new HeadbenchInputError(`${path}: not an IDX file (bad magic number)`, path);
  }
  if (buf[2] !== UBYTE) {
    throw new HeadbenchInputError(
      `${path}: IDX data type 0x${buf[2].toString(16)} is not supported (only unsigned byte, 0x08)`,
      path,
    );
  }
  const ndims = buf[3];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4 + 4 * ndims) throw new HeadbenchInputError(`${path}: truncated IDX header`, path);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * ndims;
  if (buf.length - start < count) {
    throw new HeadbenchInputError(
      `${path}: truncated IDX data: header says ${dims.join('x')} = ${count} bytes, file has ${buf.length - start}`,
      path,
    );
  }
  return { dims, data: buf.subarray(start, start + count) };
}

/** Encode an unsigned-byte IDX array; gzip when asked. */
export function encodeIdx(array: IdxArray, gzip = false): Buffer {
  const header = Buffer.alloc(4 + 4 * array.dims.length);
  header[2] = UBYTE;
  header[3] = array.dims.length;
  for (const [i, d] of array.dims.entries()) header.writeUInt32BE(d, 4 + 4 * i);
  const raw = Buffer.concat([
    header,
    Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength),
  ]);
  return gzip ? gzipSync(raw) : raw;
}

export async function writeIdx(path: string, array: IdxArray): Promise<void> {
  await writeFile(path, encodeIdx(array, path.endsWith('.gz')));
}

export interface IdxOptions {
  /** Class names in label order; default '0'..'K-1'. */
  classes?: readonly string[];
  resize?: ResizeKernel;
}

/** Open an images file (N×H×W or N×H×W×C) and its labels file (N) as a dataset. */
export async function openIdxDataset(
  imagesPath: string,
  labelsPath: string,
  options: IdxOptions = {},
): Promise<ImageDataset> {
  const [imgBytes, labBytes] = await Promise.all(
    [imagesPath, labelsPath].map((p) =>
      readFile(p).catch((err: Error) => {
        throw new HeadbenchInputError(`cannot read IDX file ${resolve(p)}: ${err.message}`, p);
      }),
    ),
  );
  const images = parseIdx(imgBytes, imagesPath);
  const labels = parseIdx(labBytes, labelsPath);
  if (images.dims.length !== 3 && !(images.dims.length === 4 && [1, 3].includes(images.dims[3]))) {
    throw new HeadbenchInputError(
      `${imagesPath}: images must have shape N×H×W or N×H×W×C (C = 1 or 3), got ${images.dims.join('×')}`,
      imagesPath,
    );
  }
  if (labels.dims.length !== 1) {
    throw new HeadbenchInputError(
      `${labelsPath}: labels must have shape N, got ${labels.dims.join('×')}`,
      labelsPath,
    );
  }
  const [n, h, w] = images.dims;
  const c = (images.dims[3] ?? 1) as 1 | 3;
  if (labels.dims[0] !== n) {
    throw new HeadbenchInputError(
      `label count mismatch: ${imagesPath} has ${n} images but ${labelsPath} has ${labels.dims[0]} labels`,
      labelsPath,
    );
  }
  const maxLabel = labels.data.reduce((m, v) => Math.max(m, v), 0);
  const classes = options.classes
    ? [...options.classes]
    : Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  if (maxLabel >= classes.length) {
    throw new HeadbenchInputError(
      `${labelsPath}: label ${maxLabel} has no class name (${classes.length} names given)`,
      labelsPath,
    );
  }
  const hash = createHash('sha256')
    .update(`classes:${classes.join('\u0000')}\n`)
    .update(imgBytes)
    .update(labBytes);
  const stride = h * w * c;
  const name = basename(imagesPath).replace(/(\.gz)?$/, '');
  return {
    name,
    uri: `idx:${resolve(imagesPath)},${resolve(labelsPath)}`,
    classes,
    size: n,
    labels: Int32Array.from(labels.data),
    sources: Array.from({ length: n }, (_, i) => `${imagesPath}#${i}`),
    skipped: [],
    contentHash: hash.digest('hex'),
    read: async (index: number, size: ImageSize) =>
      resizeRaw(
        images.data.subarray(index * stride, (index + 1) * stride),
        { height: h, width: w, channels: c },
        size,
        options.resize,
      ),
  };
}
