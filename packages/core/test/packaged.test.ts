// `npm:<package>/<model>` weights: the installed nsfwjs package read into a cached model folder, and every bad
// package (missing, no such model, not a layers model, short shard, unknown quantization) a clear error that
// names it, with nothing cached.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  dequantizeWeights,
  packagedWeightsDir,
  readPackagedFolder,
  readPackagedModel,
} from '@headbench/weights';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'headbench-packaged-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const topology = {
  keras_version: '2.2.4',
  backend: 'tensorflow',
  model_config: {
    class_name: 'Model',
    config: { name: 'm', layers: [], input_layers: [], output_layers: [] },
  },
};
const spec = (name: string, shape: number[], quantization?: object) => ({
  name,
  shape,
  dtype: 'float32',
  ...(quantization ? { quantization } : {}),
});

/**
 * An installed package `nsfwjs` in the nsfwjs module format (under `<dir>/node_modules`), shipping `tiny`: its
 * model JSON, and each shard as a base64 string module. Returns a file to resolve it from.
 */
async function fakePackage(
  name: string,
  modelJson: object,
  shards: Uint8Array[],
  exported = 'tiny',
): Promise<string> {
  const dir = join(root, name);
  const pkg = join(dir, 'node_modules', 'nsfwjs');
  await mkdir(join(pkg, 'models', 'tiny'), { recursive: true });
  await writeFile(
    join(pkg, 'package.json'),
    JSON.stringify({
      name: 'nsfwjs',
      version: '9.9.9',
      exports: { [`./models/${exported}`]: { require: './tiny.cjs' } },
    }),
  );
  await writeFile(
    join(pkg, 'models', 'tiny', 'model.min.js'),
    `module.exports = ${JSON.stringify(modelJson)};`,
  );
  const bundles = shards.map((bytes, i) => {
    const file = `group1-shard${i + 1}of${shards.length}.min.js`;
    return { file, text: `module.exports = ${JSON.stringify(Buffer.from(bytes).toString('base64'))};` };
  });
  for (const b of bundles) await writeFile(join(pkg, 'models', 'tiny', b.file), b.text);
  await writeFile(
    join(pkg, 'tiny.cjs'),
    `exports.TinyModel = {
  modelJson: () => Promise.resolve(require('./models/tiny/model.min.js')).then((m) => ({ default: m })),
  weightBundles: ${JSON.stringify(bundles.map((b) => b.file))}.map((f) => () =>
    Promise.resolve(require('./models/tiny/' + f)).then((m) => ({ default: m }))),
};`,
  );
  return join(dir, 'index.js');
}

const manifest = (weights: object[], shards: number) => [
  { paths: Array.from({ length: shards }, (_, i) => `group1-shard${i + 1}of${shards}`), weights },
];

describe('npm packaged weights', () => {
  it('reads nsfwjs 4.4.0 mobilenet_v2 into a cached folder with its version and sha256', async () => {
    const home = join(root, 'home-real');
    const dir = await packagedWeightsDir('npm:nsfwjs/mobilenet_v2', home);
    expect(dir).toBe(join(home, 'weights', 'npm', 'nsfwjs@4.4.0', 'mobilenet_v2'));
    const folder = await readPackagedFolder(dir, 'npm:nsfwjs/mobilenet_v2');
    const bytes = await readFile(join(dir, 'weights.bin'));
    expect(folder?.info).toEqual({
      source: 'npm:nsfwjs/mobilenet_v2',
      name: 'nsfwjs',
      version: '4.4.0',
      model: 'mobilenet_v2',
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
    expect(folder?.weightSpecs.every((s) => s.quantization?.dtype === 'uint8')).toBe(true);
    // The package's own head is there too (the backbone loader ignores it).
    expect(folder?.weightSpecs.map((s) => s.name)).toContain('Conv1/kernel');
  });

  it('dequantizes uint8 as min + scale·byte and reads float32 as stored', () => {
    const data = new Uint8Array([0, 1, 255, ...new Uint8Array(new Float32Array([1.5, -2]).buffer)]);
    const out = dequantizeWeights(
      [
        spec('a/kernel', [3], { dtype: 'uint8', min: -1, scale: 0.5 }),
        spec('b/bias', [2]) as ReturnType<typeof spec> & { dtype: 'float32' },
      ] as never,
      data,
    );
    expect([...out[0].values]).toEqual([-1, -0.5, 126.5]);
    expect([...out[1].values]).toEqual([1.5, -2]);
  });

  it('reads a package in the nsfwjs module format and checks its shards', async () => {
    const weights = [
      spec('conv/kernel', [2, 3], { dtype: 'uint8', min: 0, scale: 1 }),
      spec('conv/bias', [2]),
    ];
    const bytes = new Uint8Array(14).map((_, i) => i);
    const from = await fakePackage('ok', { modelTopology: topology, weightsManifest: manifest(weights, 2) }, [
      bytes.slice(0, 8),
      bytes.slice(8),
    ]);
    const m = await readPackagedModel('npm:nsfwjs/tiny', { from });
    expect(m.info.version).toBe('9.9.9');
    expect([...m.data]).toEqual([...bytes]);
  });

  const bad: [string, () => Promise<string>, string | RegExp][] = [
    [
      'a package that is not installed',
      async () => join(root, 'nowhere', 'index.js'),
      "npm:nsfwjs/tiny: the npm package 'nsfwjs' is not installed",
    ],
    [
      'a model the package does not ship',
      async () =>
        fakePackage('nomodel', { modelTopology: topology, weightsManifest: manifest([], 0) }, [], 'small'),
      "npm:nsfwjs/tiny: nsfwjs@9.9.9 ships no model 'tiny' (it ships: small)",
    ],
    [
      'a JSON that is not a layers model',
      () =>
        fakePackage(
          'graph',
          { modelTopology: { node: [] }, weightsManifest: manifest([], 0), format: 'graph-model' },
          [],
        ),
      'npm:nsfwjs/tiny: the model JSON is not a tfjs layers model',
    ],
    [
      'a shard of the wrong length',
      () =>
        fakePackage(
          'short',
          {
            modelTopology: topology,
            weightsManifest: manifest([spec('d/kernel', [10, 2], { dtype: 'uint8', min: 0, scale: 1 })], 3),
          },
          [new Uint8Array(8), new Uint8Array(7), new Uint8Array(4)],
        ),
      'weight shard group1-shard2of3 holds 7 bytes, expected 8 (all 3 shards hold 19 bytes; the weights need 20)',
    ],
    [
      'a quantization the loader does not support',
      () =>
        fakePackage(
          'f16',
          {
            modelTopology: topology,
            weightsManifest: manifest([spec('d/kernel', [2], { dtype: 'float16' })], 1),
          },
          [new Uint8Array(4)],
        ),
      /weight 'd\/kernel' uses quantization \{"dtype":"float16"\}; headbench reads uint8/,
    ],
  ];
  for (const [what, make, message] of bad)
    it(`${what}: a clear error and nothing cached`, async () => {
      const from = await make();
      // "not installed" is only true from a folder without the real package above it.
      if (what.includes('not installed')) await mkdir(join(root, 'nowhere'), { recursive: true });
      const home = join(root, `home-${what.replaceAll(' ', '-')}`);
      const err = await packagedWeightsDir('npm:nsfwjs/tiny', home, { from }).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      if (typeof message === 'string') expect((err as Error).message).toContain(message);
      else expect((err as Error).message).toMatch(message);
      const cached = await readdir(join(home, 'weights', 'npm'), { recursive: true }).catch(() => []);
      expect(cached.filter((f) => String(f).includes('tiny'))).toEqual([]);
    });

  it('names a package it has no reader for and a malformed reference', async () => {
    await expect(packagedWeightsDir('npm:left-pad/model', root)).rejects.toThrow(
      "npm:left-pad/model: headbench has no reader for the npm package 'left-pad' (it reads: nsfwjs)",
    );
    await expect(packagedWeightsDir('npm:nsfwjs/../x', root)).rejects.toThrow(
      /is not npm:<package>\/<model>/,
    );
  });
});
