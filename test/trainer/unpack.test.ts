// The trainer's archive reader on real files, in its real worker thread: decompression bombs and entries
// that try to leave the folder are refused as bad input, with a message naming the limit; good archives
// unpack to regular files only.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { HeadbenchInputError } from '@headbench/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unpackArchive } from '../../apps/trainer/src/worker/unpack.js';
import { tarOf, tgzBomb, zipBomb, zipOf } from './archives.js';

const MiB = 1024 * 1024;

describe('trainer archive unpacking', () => {
  let tmp: string;
  let n = 0;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'headbench-unpack-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });
  const unpack = async (name: string, bytes: Buffer, maxBytes = 1024 * MiB, maxEntries?: number) => {
    const file = join(tmp, `${n++}-${name}`);
    await writeFile(file, bytes);
    const dest = join(tmp, `out-${n}`);
    const format = name.endsWith('.zip') ? 'zip' : name.endsWith('.tgz') ? 'tgz' : 'tar';
    const out = await unpackArchive({
      file,
      format,
      dest,
      limits: { maxBytes, maxEntries },
      label: `dataset ${name}`,
    }).catch((e: Error) => e);
    return { out, dest };
  };
  const bytesUnder = async (dir: string): Promise<number> => {
    let total = 0;
    for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
      if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
    return total;
  };

  it('zip bomb: 64 MiB of zeros in a small zip is refused by the ratio limit, without filling the disk', async () => {
    const bomb = zipBomb(64 * MiB);
    expect(bomb.length).toBeLessThan(256 * 1024);
    const { out, dest } = await unpack('bomb.zip', bomb);
    expect(out).toBeInstanceOf(HeadbenchInputError);
    expect((out as Error).message).toMatch(/dataset bomb\.zip: archive unpacks to more than 100× its size/);
    expect(await bytesUnder(dest)).toBeLessThan(32 * MiB);
  });

  it('tgz bomb: 64 MiB of zeros in a small .tar.gz is refused by the ratio limit', async () => {
    const bomb = await tgzBomb(64 * MiB);
    expect(bomb.length).toBeLessThan(256 * 1024);
    const { out, dest } = await unpack('bomb.tgz', bomb);
    expect(out).toBeInstanceOf(HeadbenchInputError);
    expect((out as Error).message).toMatch(/dataset bomb\.tgz: archive unpacks to more than 100× its size/);
    expect(await bytesUnder(dest)).toBeLessThan(32 * MiB);
  });

  it('refuses an archive past the byte cap (HEADBENCH_MAX_UNPACKED_BYTES) and one with too many entries', async () => {
    const random = Buffer.from(Array.from({ length: 3 * MiB }, (_, i) => (i * 2654435761) >>> 24));
    const big = await unpack('big.tar', tarOf([{ name: 'a/x.bin', data: random }]), 2 * MiB);
    expect((big.out as Error).message).toMatch(
      /unpacks to more than 2097152 bytes \(HEADBENCH_MAX_UNPACKED_BYTES\)/,
    );
    // The entry limit (TRAINER_LIMITS.archiveEntries), lowered here so the test writes few files.
    const many = Array.from({ length: 21 }, (_, i) => ({ name: `a/${i}`, data: Buffer.alloc(0) }));
    const fits = await unpack('crowd.zip', zipOf(many.slice(0, 20)), MiB, 20);
    expect(fits.out).not.toBeInstanceOf(Error);
    for (const [name, bytes] of [
      ['crowd.tgz', gzipSync(tarOf(many))],
      ['crowd.zip', zipOf(many)],
    ] as const) {
      const tooMany = await unpack(name, bytes, MiB, 20);
      expect((tooMany.out as Error).message).toMatch(/holds more than 20 entries/);
    }
  });

  it('path escape in an archive: ../ names and links out are refused or skipped, nothing lands outside', async () => {
    const zip = await unpack('escape.zip', zipOf([{ name: '../../escaped.txt', data: Buffer.from('x') }]));
    expect(zip.out).toBeInstanceOf(HeadbenchInputError);
    const tar = await unpack('escape.tar', tarOf([{ name: '../escaped.txt', data: Buffer.from('x') }]));
    expect(tar.out).toBeInstanceOf(HeadbenchInputError);
    const links = await unpack(
      'links.tar',
      tarOf([
        { name: 'flowers/a/passwd', type: '2', link: '/etc/passwd' },
        { name: 'flowers/a/hard', type: '1', link: '/etc/passwd' },
        { name: 'flowers/a/ok.txt', data: Buffer.from('ok') },
      ]),
    );
    expect(links.out).not.toBeInstanceOf(Error);
    expect(await readdir(join(links.dest, 'flowers', 'a'))).toEqual(['ok.txt']);
    await expect(stat(join(tmp, 'escaped.txt'))).rejects.toThrow(/ENOENT/);
  });

  it('unpacks good zip, tar and tgz archives to the same regular files', async () => {
    const files = [
      { name: 'set/a/1.txt', data: Buffer.from('one') },
      { name: 'set/b/2.txt', data: Buffer.from('two'.repeat(1000)) },
    ];
    for (const [name, bytes] of [
      ['good.zip', zipOf(files)],
      ['good.tar', tarOf(files)],
      ['good.tgz', gzipSync(tarOf(files))],
    ] as const) {
      const { out, dest } = await unpack(name, bytes);
      expect(out, name).toEqual({ entries: 2, bytes: expect.any(Number) });
      expect(await readFile(join(dest, 'set', 'b', '2.txt'), 'utf8')).toBe('two'.repeat(1000));
    }
  });
});
