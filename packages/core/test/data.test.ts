import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cropShifted,
  deprocess,
  encodeIdx,
  generateFlowers,
  HeadbenchInputError,
  ImageLoader,
  openDataset,
  openDirectoryDataset,
  openIdxDataset,
  parseIdx,
  preprocessInPlace,
  Rng,
  shiftCanvas,
  shiftViews,
  splitDataset,
  splitHash,
  warpImage,
  writeIdx,
} from '../src/index.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'headbench-data-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function solidPng(path: string, rgb: [number, number, number], size = 20, channels: 1 | 3 | 4 = 3) {
  const bg =
    channels === 1 ? { r: rgb[0], g: rgb[0], b: rgb[0] } : { r: rgb[0], g: rgb[1], b: rgb[2], alpha: 1 };
  let img = sharp({
    create: { width: size, height: size, channels: channels === 4 ? 4 : 3, background: bg },
  });
  if (channels === 1) img = img.toColourspace('b-w');
  await writeFile(path, await img.png().toBuffer());
}

describe('class-folder directory loader', () => {
  it('reads a generated tree, skipping a corrupt JPEG, a zero-byte file and a non-image with reasons', async () => {
    const root = join(tmp, 'flowers');
    await generateFlowers(root, { classes: 3, perClass: 8, size: 32, seed: 7 });
    const first = (await openDirectoryDataset(root)).classes[0];
    const good = await readFile(join(root, first, 'image_0001.jpg'));
    await writeFile(join(root, first, 'truncated.jpg'), good.subarray(0, Math.floor(good.length / 2)));
    await writeFile(join(root, first, 'empty.jpg'), Buffer.alloc(0));
    await writeFile(join(root, first, 'notes.txt'), 'not an image');

    const ds = await openDirectoryDataset(root);
    expect(ds.classes).toEqual(['daffodil', 'lilyvalley', 'snowdrop']);
    // The truncated JPEG has a valid header: it is found by the scan and fails at decode time.
    expect(ds.size).toBe(3 * 8 + 1);
    const reasons = Object.fromEntries(ds.skipped.map((s) => [s.path.split('/').pop(), s.reason]));
    expect(reasons['empty.jpg']).toMatch(/empty file/);
    expect(reasons['notes.txt']).toMatch(/not a readable image|unsupported/);

    const loader = new ImageLoader(ds, { height: 16, width: 16 });
    const all = Array.from({ length: ds.size }, (_, i) => i);
    const batches = [];
    for await (const b of loader.batches(all, { batchSize: 10, preprocess: 'none' })) batches.push(b);
    expect(batches.reduce((n, b) => n + b.y.length, 0)).toBe(24);
    expect(ds.skipped.find((s) => s.path.endsWith('truncated.jpg'))?.reason).toMatch(/decode failed/);
    for (const b of batches) {
      expect(b.shape.slice(1)).toEqual([16, 16, 3]);
      expect(b.x.length).toBe(b.y.length * 16 * 16 * 3);
      expect(Math.max(...b.x)).toBeLessThanOrEqual(255);
    }
  });

  it('decodes PNG with alpha, grayscale, WebP and GIF to RGB at the requested size', async () => {
    const root = join(tmp, 'formats');
    await mkdir(join(root, 'a'), { recursive: true });
    await mkdir(join(root, 'b'), { recursive: true });
    await solidPng(join(root, 'a', 'rgba.png'), [200, 10, 20], 24, 4);
    await solidPng(join(root, 'a', 'gray.png'), [90, 90, 90], 24, 1);
    const webp = await sharp({
      create: { width: 30, height: 10, channels: 3, background: { r: 0, g: 255, b: 0 } },
    })
      .webp({ lossless: true })
      .toBuffer();
    await writeFile(join(root, 'b', 'x.webp'), webp);
    const gif = await sharp({
      create: { width: 8, height: 8, channels: 3, background: { r: 0, g: 0, b: 255 } },
    })
      .gif()
      .toBuffer();
    await writeFile(join(root, 'b', 'y.gif'), gif);

    const ds = await openDirectoryDataset(root);
    expect(ds.skipped).toEqual([]);
    const px = async (name: string) => {
      const i = ds.sources.findIndex((s) => s.endsWith(name));
      const img = await ds.read(i, { height: 4, width: 6 });
      expect(img.length).toBe(4 * 6 * 3);
      return Array.from(img.subarray(0, 3));
    };
    expect(await px('rgba.png')).toEqual([200, 10, 20]);
    expect(await px('gray.png')).toEqual([90, 90, 90]);
    expect(await px('x.webp')).toEqual([0, 255, 0]);
    const g = await px('y.gif');
    expect(g[2]).toBeGreaterThan(200);
  });

  it('honours an explicit class order and names unknown, missing and empty classes', async () => {
    const root = join(tmp, 'order');
    for (const c of ['cat', 'dog', 'eel']) {
      await mkdir(join(root, c), { recursive: true });
      await solidPng(join(root, c, '1.png'), [1, 2, 3]);
    }
    const ds = await openDirectoryDataset(root, { classes: ['eel', 'cat'] });
    expect(ds.classes).toEqual(['eel', 'cat']);
    expect(ds.size).toBe(2);
    expect(ds.labels[ds.sources.findIndex((s) => s.includes('/eel/'))]).toBe(0);
    expect(ds.skipped.map((s) => s.reason)).toEqual(['folder is not in the classes list']);

    await expect(openDirectoryDataset(root, { classes: ['cat', 'yak'] })).rejects.toThrow(
      /yak.*unknown class name/,
    );
    await expect(openDirectoryDataset(join(root, 'nope'))).rejects.toThrow(/does not exist: .*nope/);
    await mkdir(join(root, 'fox'));
    await writeFile(join(root, 'fox', 'readme.txt'), 'x');
    const err = await openDirectoryDataset(root).catch((e) => e);
    expect(err).toBeInstanceOf(HeadbenchInputError);
    expect(err.message).toMatch(/class 'fox' is empty: .*\/fox/);
  });

  it('uses existing train/ and test/ subtrees as the split', async () => {
    const root = join(tmp, 'presplit');
    for (const part of ['train', 'test']) {
      for (const c of ['x', 'y']) {
        await mkdir(join(root, part, c), { recursive: true });
        const n = part === 'train' ? 3 : 1;
        for (let i = 0; i < n; i++) await solidPng(join(root, part, c, `${i}.png`), [i, 0, 0]);
      }
    }
    const ds = await openDirectoryDataset(root);
    const split = splitDataset(ds);
    // Validation is carved from train/ (one image per class here), test/ stays as it is.
    expect(split.train.length).toBe(4);
    expect(split.val.length).toBe(2);
    expect(split.test.length).toBe(2);
    expect(split.test.every((i) => ds.sources[i].includes('/test/'))).toBe(true);
    expect(split.val.every((i) => ds.sources[i].includes('/train/'))).toBe(true);
  });
});

describe('stratified split', () => {
  const labels = Int32Array.from({ length: 17 * 80 }, (_, i) => Math.floor(i / 80));
  const ds = { classes: Array.from({ length: 17 }, (_, i) => `c${i}`), labels } as never;

  it('7:1 keeps 10 of every 80 images for test and carves 1/8 of the other 70 for validation, per class', () => {
    const a = splitDataset(ds, { seed: 1 });
    // Per class: test round(80/8) = 10; validation round(70/8) = 9 (8.75); train 61.
    for (let c = 0; c < 17; c++) {
      expect(a.test.filter((i) => labels[i] === c).length).toBe(10);
      expect(a.val.filter((i) => labels[i] === c).length).toBe(9);
      expect(a.train.filter((i) => labels[i] === c).length).toBe(61);
    }
    expect(new Set([...a.train, ...a.val, ...a.test]).size).toBe(17 * 80);
    expect(splitDataset(ds, { seed: 1 })).toEqual(a);
    expect(splitHash(splitDataset(ds, { seed: 1 }))).toBe(splitHash(a));
    const b = splitDataset(ds, { seed: 2 });
    expect(b.test).not.toEqual(a.test);
    expect(splitHash(b)).not.toBe(splitHash(a));
    expect(splitDataset(ds, { ratio: '3:1' }).test.length).toBe(17 * 20);
    expect(splitDataset(ds, { ratio: '7:1', valFraction: 0.25 }).val.length).toBe(17 * 18); // round(70/4)
  });

  it('6:1:1 gives three sets of 60, 10 and 10 per class; bad ratios name the form', () => {
    const a = splitDataset(ds, { ratio: '6:1:1', seed: 0 });
    expect([a.train.length, a.val.length, a.test.length]).toEqual([17 * 60, 17 * 10, 17 * 10]);
    expect(() => splitDataset(ds, { ratio: '7/1' })).toThrow(
      /train:val:test \("6:1:1"\) or train:test \("7:1"\)/,
    );
    expect(() => splitDataset(ds, { ratio: '6:1:1', valFraction: 0.2 })).toThrow(
      /valFraction applies to train:test/,
    );
    expect(() => splitDataset(ds, { valFraction: 1.5 })).toThrow(/valFraction: 1.5 must be in \(0, 1\)/);
  });
});

describe('shifted crops', () => {
  it('moves the content by (dx, dy) in both directions on both axes, from one larger resize', () => {
    const size = { height: 16, width: 16 };
    const views = shiftViews([0, 1 / 16, 1 / 8, 1 / 4], size);
    expect(views.map((v) => [v.dx, v.dy])).toEqual([
      [0, 0],
      [1, 0],
      [-1, 0],
      [0, 1],
      [0, -1],
      [2, 0],
      [-2, 0],
      [0, 2],
      [0, -2],
      [4, 0],
      [-4, 0],
      [0, 4],
      [0, -4],
    ]);
    const canvas = shiftCanvas(views, size);
    expect(canvas).toEqual({ height: 24, width: 24 });
    // A synthetic canvas: one white pixel at (x 12, y 10), red channel = column index elsewhere.
    const img = new Float32Array(24 * 24 * 3);
    for (let y = 0; y < 24; y++) for (let x = 0; x < 24; x++) img[(y * 24 + x) * 3] = x;
    img.fill(255, (10 * 24 + 12) * 3, (10 * 24 + 12) * 3 + 3);
    const where = (crop: Float32Array) => {
      const p = crop.findIndex((v, i) => i % 3 === 1 && v === 255);
      return { x: ((p - 1) / 3) % 16, y: Math.floor((p - 1) / 3 / 16) };
    };
    // Centred crop: origin (4, 4), so the pixel is at (8, 6).
    expect(where(cropShifted(img, canvas, size, 0, 0))).toEqual({ x: 8, y: 6 });
    expect(where(cropShifted(img, canvas, size, 4, 0))).toEqual({ x: 12, y: 6 });
    expect(where(cropShifted(img, canvas, size, -4, 0))).toEqual({ x: 4, y: 6 });
    expect(where(cropShifted(img, canvas, size, 0, 2))).toEqual({ x: 8, y: 8 });
    expect(where(cropShifted(img, canvas, size, 0, -2))).toEqual({ x: 8, y: 4 });
    // Real content at the border, not a fill: the left column of a right shift is canvas column 0.
    expect(cropShifted(img, canvas, size, 4, 0)[0]).toBe(0);
    expect(cropShifted(img, canvas, size, -4, 0)[0]).toBe(8);
    expect(() => cropShifted(img, canvas, size, 5, 0)).toThrow(/leaves the 24×24 canvas/);
  });
});

describe('IDX files', () => {
  for (const gz of [false, true]) {
    it(`round-trips images and labels (${gz ? 'gzip' : 'raw'})`, async () => {
      const n = 12;
      const images = new Uint8Array(n * 5 * 4);
      for (let i = 0; i < images.length; i++) images[i] = (i * 37) % 256;
      const labels = Uint8Array.from({ length: n }, (_, i) => i % 3);
      const ext = gz ? '.gz' : '';
      const ip = join(tmp, `imgs${ext}`);
      const lp = join(tmp, `labels${ext}`);
      await writeIdx(ip, { dims: [n, 5, 4], data: images });
      await writeIdx(lp, { dims: [n], data: labels });
      const bytes = await readFile(ip);
      expect(bytes[0] === 0x1f).toBe(gz);
      expect(parseIdx(bytes).dims).toEqual([n, 5, 4]);

      const ds = await openIdxDataset(ip, lp, { classes: ['zero', 'one', 'two'] });
      expect(ds.size).toBe(n);
      expect(Array.from(ds.labels)).toEqual(Array.from(labels));
      const img = await ds.read(3, { height: 5, width: 4 });
      // Grayscale is replicated to 3 channels, unchanged at the native size.
      for (let p = 0; p < 20; p++) {
        const v = images[3 * 20 + p];
        expect([img[p * 3], img[p * 3 + 1], img[p * 3 + 2]]).toEqual([v, v, v]);
      }
      expect((await ds.read(0, { height: 10, width: 8 })).length).toBe(10 * 8 * 3);
    });
  }

  it('reports a labels/images count mismatch and bad files by path', async () => {
    const ip = join(tmp, 'mm-images');
    const lp = join(tmp, 'mm-labels');
    await writeIdx(ip, { dims: [4, 2, 2], data: new Uint8Array(16) });
    await writeIdx(lp, { dims: [3], data: new Uint8Array(3) });
    await expect(openIdxDataset(ip, lp)).rejects.toThrow(/4 images but .*mm-labels has 3 labels/);
    await writeFile(join(tmp, 'junk'), 'hello world');
    await expect(openIdxDataset(join(tmp, 'junk'), lp)).rejects.toThrow(/junk: not an IDX file/);
    const truncated = encodeIdx({ dims: [4, 2, 2], data: new Uint8Array(16) }).subarray(0, 20);
    await writeFile(join(tmp, 'short'), truncated);
    await expect(openIdxDataset(join(tmp, 'short'), lp)).rejects.toThrow(/short: truncated IDX data/);
    await expect(openDataset('idx:onlyone')).rejects.toThrow(/idx:<images file>,<labels file>/);
  });
});

describe('generated flowers', () => {
  it('is deterministic: same seed, same bytes; another seed differs', async () => {
    const opts = { classes: 4, perClass: 3, size: 48 };
    const a = await openDirectoryDataset((await gen('a', { ...opts, seed: 3 })).dir);
    const b = await openDirectoryDataset((await gen('b', { ...opts, seed: 3 })).dir);
    const c = await openDirectoryDataset((await gen('c', { ...opts, seed: 4 })).dir);
    expect(a.contentHash).toBe(b.contentHash);
    expect(c.contentHash).not.toBe(a.contentHash);
    expect(a.size).toBe(12);
    expect(a.classes.length).toBe(4);
  });

  it('opens through a generated: URI with a cache dir, and rejects bad parameters', async () => {
    const ds = await openDataset('generated:flowers3?perClass=2&size=32&seed=1', {
      cacheDir: join(tmp, 'cache'),
    });
    expect(ds.size).toBe(6);
    expect(ds.name).toBe('flowers3');
    await expect(openDataset('generated:flowers99')).rejects.toThrow(/2 to 17 classes/);
    await expect(openDataset('generated:tulips')).rejects.toThrow(/unknown generated dataset 'tulips'/);
    await expect(openDataset('generated:flowers17?sise=3')).rejects.toThrow(/unknown parameter 'sise'/);
  });

  async function gen(name: string, o: Parameters<typeof generateFlowers>[1]) {
    const dir = join(tmp, `gen-${name}`);
    await generateFlowers(dir, o);
    return { dir };
  }
});

describe('preprocessing', () => {
  it('caffe mode: RGB→BGR and subtracts the ImageNet BGR means', () => {
    const x = Float32Array.from([10, 20, 30, 255, 0, 128]);
    preprocessInPlace(x, 'caffe');
    const expected = [30 - 103.939, 20 - 116.779, 10 - 123.68, 128 - 103.939, 0 - 116.779, 255 - 123.68];
    expected.forEach((v, i) => expect(x[i]).toBeCloseTo(v, 4));
    const back = deprocess(x, 'caffe');
    [10, 20, 30, 255, 0, 128].forEach((v, i) => expect(back[i]).toBeCloseTo(v, 3));
  });

  it('tf mode scales to [-1, 1]', () => {
    const x = Float32Array.from([0, 127.5, 255]);
    preprocessInPlace(x, 'tf');
    expect(Array.from(x)).toEqual([-1, 0, 1]);
  });
});

describe('augmentation and streaming', () => {
  it('flips, shifts with edge fill or constant fill', () => {
    const size = { height: 2, width: 3 };
    const img = Float32Array.from({ length: 18 }, (_, i) => i);
    const flipped = warpImage(img, size, { flip: true, dx: 0, dy: 0, degrees: 0 });
    expect(Array.from(flipped.subarray(0, 3))).toEqual([6, 7, 8]);
    expect(Array.from(warpImage(flipped, size, { flip: true, dx: 0, dy: 0, degrees: 0 }))).toEqual(
      Array.from(img),
    );
    const shifted = warpImage(img, size, { flip: false, dx: 1, dy: 0, degrees: 0 }, 'constant', 0);
    expect(Array.from(shifted.subarray(0, 9))).toEqual([0, 0, 0, 0, 1, 2, 3, 4, 5]);
    const edge = warpImage(img, size, { flip: false, dx: 1, dy: 0, degrees: 0 });
    expect(Array.from(edge.subarray(0, 6))).toEqual([0, 1, 2, 0, 1, 2]);
  });

  it('streams through a cache smaller than the dataset', async () => {
    const ds = await openDataset('generated:flowers3?perClass=10&size=32&seed=2', {
      cacheDir: join(tmp, 'cache'),
    });
    const size = { height: 32, width: 32 };
    const loader = new ImageLoader(ds, size, { cacheBytes: 5 * 32 * 32 * 3 * 4 });
    expect(loader.cacheCapacity).toBe(5);
    const seen: number[] = [];
    const rng = new Rng(1);
    for await (const b of loader.batches([...Array(ds.size).keys()], {
      batchSize: 4,
      preprocess: 'tf',
      shuffle: rng,
      augment: { horizontalFlip: true, shift: 0.1, rotation: 10 },
      augmentRng: new Rng(2),
    })) {
      seen.push(...b.indices);
      expect(loader.cachedCount).toBeLessThanOrEqual(5);
      expect(Math.min(...b.x)).toBeGreaterThanOrEqual(-1);
    }
    expect(seen.sort((a, b) => a - b)).toEqual([...Array(30).keys()]);
  });
});
