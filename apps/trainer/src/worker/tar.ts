// A minimal ustar writer/reader for folders of regular files (checkpoints, models, dataset archives).
// Our own archives only hold plain files; the reader also skips links and PAX/GNU long-name records it
// cannot use, so downloaded dataset .tar.gz files from common tools extract too.
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, normalize, relative, sep } from 'node:path';

const BLOCK = 512;

async function listFiles(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(root, p)));
    else if (e.isFile()) out.push(relative(root, p).split(sep).join('/'));
  }
  return out.sort();
}

function header(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    // ustar splits long paths at a slash: prefix (≤155) / name (≤100).
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100)
      throw new Error(`tar: path too long: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0, 100, 'utf8');
  h.write('0000644\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
  h.write(`${Math.floor(mtime).toString(8).padStart(11, '0')}\0`, 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write('0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** Packs every regular file under `dir` (paths relative to it) into one tar buffer. */
export async function packDir(
  dir: string,
  transform?: (rel: string, data: Buffer) => Buffer,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const rel of await listFiles(dir)) {
    const p = join(dir, rel);
    const [raw, st] = await Promise.all([readFile(p), stat(p)]);
    const data = transform ? transform(rel, raw) : raw;
    parts.push(header(rel, data.length, st.mtimeMs / 1000), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

const str = (b: Buffer, off: number, len: number) => {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul < 0 ? len : nul).toString('utf8');
};

/** Entries of a tar buffer: regular files only, with their paths. */
export function readTar(buf: Buffer): { path: string; data: Buffer }[] {
  const out: { path: string; data: Buffer }[] = [];
  let off = 0;
  let longName: string | undefined;
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    if (sum !== Number.parseInt(str(h, 148, 8).trim(), 8))
      throw new Error(`tar: bad header checksum at ${off}`);
    const size = Number.parseInt(str(h, 124, 12).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = str(h, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100));
    const data = buf.subarray(off + BLOCK, off + BLOCK + size);
    off += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    longName = undefined;
    if (type === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
    else if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (m) longName = m[1];
    } else if (type === '0' || type === '7') out.push({ path: name, data });
  }
  return out;
}

/** Writes entries under `dir`, refusing paths that would escape it. */
export async function writeEntries(entries: { path: string; data: Buffer }[], dir: string): Promise<number> {
  let n = 0;
  for (const e of entries) {
    const rel = normalize(e.path).replace(/^(\.\/)+/, '');
    if (rel.startsWith('..') || rel.startsWith('/') || rel === '.')
      throw new Error(`archive path escapes: ${e.path}`);
    const p = join(dir, rel);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, e.data);
    n++;
  }
  return n;
}
