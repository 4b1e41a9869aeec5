import '@tensorflow/tfjs-backend-cpu';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildBackbone } from '../src/models/backbones/index.js';
import { fileSystemHandler, loadModel, loadWeightsByName, saveModel } from '../src/models/io.js';

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'headbench-io-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const models: tfl.LayersModel[] = [];
function keep<T extends tfl.LayersModel>(m: T): T {
  models.push(m);
  return m;
}
afterEach(() => {
  for (const m of models.splice(0)) m.dispose();
});

let dirCount = 0;
const freshDir = () => join(root, `m${dirCount++}`);

/** A fixed batch of inputs (seeded). */
const batch = (size: number, n = 2) => tf.randomUniform([n, size, size, 3], -1, 1, 'float32', 11);

function predict(m: tfl.LayersModel, x: tf.Tensor): Float32Array {
  return tf.tidy(() => (m.predict(x) as tf.Tensor).dataSync() as Float32Array);
}

/** A small VGG-style net with the layer names of keras.applications VGG16 (blocks 1–2) plus a classifier. */
function vggLike(seed: number, opts: { channels?: number; top?: boolean; filters?: number } = {}) {
  const init = (i: number) => tfl.initializers.glorotUniform({ seed: seed * 100 + i });
  const input = tfl.input({ shape: [16, 16, opts.channels ?? 3], name: 'input_1' });
  let x = input as tfl.SymbolicTensor;
  let i = 0;
  for (const [b, convs, filters] of [
    [1, 2, opts.filters ?? 8],
    [2, 2, 16],
  ] as const) {
    for (let c = 1; c <= convs; c++) {
      x = tfl.layers
        .conv2d({
          filters,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          name: `block${b}_conv${c}`,
          kernelInitializer: init(i++),
          biasInitializer: tfl.initializers.randomNormal({ seed: seed * 100 + 50 + i }),
        })
        .apply(x) as tfl.SymbolicTensor;
    }
    x = tfl.layers.maxPooling2d({ poolSize: 2, name: `block${b}_pool` }).apply(x) as tfl.SymbolicTensor;
  }
  if (opts.top) {
    x = tfl.layers.flatten({ name: 'flatten' }).apply(x) as tfl.SymbolicTensor;
    x = tfl.layers
      .dense({ units: 5, activation: 'softmax', name: 'predictions', kernelInitializer: init(99) })
      .apply(x) as tfl.SymbolicTensor;
  }
  return keep(tfl.model({ inputs: input, outputs: x, name: 'vgg16' }));
}

describe('fileSystemHandler / saveModel / loadModel', () => {
  it('saves smallcnn and loads it back with identical predictions', async () => {
    const dir = freshDir();
    const m = keep(buildBackbone('smallcnn', { inputShape: [32, 32, 3], seed: 5 }));
    const result = await saveModel(m, dir);
    expect(result.modelArtifactsInfo.weightDataBytes).toBe(m.countParams() * 4);
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']); // no temp files left
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.modelTopology.config.name).toBe('smallcnn');
    expect(json.weightsManifest[0].paths).toEqual(['weights.bin']);
    expect(json.weightsManifest[0].weights.map((w: { name: string }) => w.name)).toContain(
      'block1_conv/kernel',
    );
    expect((await stat(join(dir, 'weights.bin'))).size).toBe(m.countParams() * 4);

    const loaded = keep(await loadModel(dir));
    expect(loaded.name).toBe('smallcnn');
    expect(loaded.layers.map((l) => l.name)).toEqual(m.layers.map((l) => l.name));
    const x = batch(32);
    const a = predict(m, x);
    expect(Array.from(predict(loaded, x))).toEqual(Array.from(a));
    // A model.json path works as well as its folder.
    const again = keep(await loadModel(join(dir, 'model.json')));
    expect(Array.from(predict(again, x))).toEqual(Array.from(a));
    x.dispose();
  });

  it('overwrites an existing save in place', async () => {
    const dir = freshDir();
    await saveModel(keep(buildBackbone('smallcnn', { inputShape: [16, 16, 3], seed: 1 })), dir);
    const second = keep(buildBackbone('nin', { inputShape: [16, 16, 3], seed: 2 }));
    await saveModel(second, dir);
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']);
    const loaded = keep(await loadModel(dir));
    expect(loaded.name).toBe('nin');
    const x = batch(16, 1);
    // nin has dropout, inactive in predict.
    expect(Array.from(predict(loaded, x))).toEqual(Array.from(predict(second, x)));
    x.dispose();
  });

  it('loads a model with a custom layer registered through tf.serialization', async () => {
    class TimesTwo extends tfl.layers.Layer {
      static className = 'HeadbenchTestTimesTwo';
      override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
        return tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, 2);
      }
    }
    tf.serialization.registerClass(TimesTwo);
    const input = tfl.input({ shape: [4] });
    const hidden = tfl.layers.dense({ units: 3, name: 'd' }).apply(input) as tfl.SymbolicTensor;
    const out = new TimesTwo({ name: 'twice' }).apply(hidden) as tfl.SymbolicTensor;
    const m = keep(tfl.model({ inputs: input, outputs: out }));
    const dir = freshDir();
    await saveModel(m, dir);
    const loaded = keep(await loadModel(dir));
    expect(loaded.getLayer('twice').getClassName()).toBe('HeadbenchTestTimesTwo');
    const x = tf.tensor2d([[1, 2, 3, 4]]);
    expect(Array.from(predict(loaded, x))).toEqual(Array.from(predict(m, x)));
    x.dispose();
  });

  it('names the path when there is no model, and detects truncated weights', async () => {
    const missing = join(root, 'does-not-exist');
    await expect(loadModel(missing)).rejects.toThrow(`no tfjs model at ${join(missing, 'model.json')}`);
    const dir = freshDir();
    await saveModel(keep(buildBackbone('smallcnn', { inputShape: [16, 16, 3] })), dir);
    const size = (await stat(join(dir, 'weights.bin'))).size;
    await truncate(join(dir, 'weights.bin'), size - 4);
    await expect(loadModel(dir)).rejects.toThrow(/hold \d+ bytes but its weightsManifest describes \d+/);
    await writeFile(join(dir, 'model.json'), '{ not json');
    await expect(loadModel(dir)).rejects.toThrow(/model.json is not valid JSON/);
  });

  it('path-escape model: a weightsManifest naming ../../../../etc/passwd (or a link out) is refused unread', async () => {
    const dir = freshDir();
    await saveModel(keep(buildBackbone('smallcnn', { inputShape: [16, 16, 3] })), dir);
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    const secret = join(root, 'secret-token');
    await writeFile(secret, 'x'.repeat(1650));
    const target = keep(buildBackbone('smallcnn', { inputShape: [16, 16, 3] }));
    for (const outside of ['../../../../etc/passwd', secret, '../secret-token', 'sub/../../secret-token']) {
      json.weightsManifest[0].paths = [outside];
      await writeFile(join(dir, 'model.json'), JSON.stringify(json));
      const err = await loadWeightsByName(target, dir).catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/weightsManifest path .* leaves the model folder/);
      // Nothing about the file outside leaks (its size, its folder).
      expect((err as Error).message).not.toMatch(/1650|bytes/);
    }
    // A link inside the folder that points out of it is the same escape.
    await symlink(secret, join(dir, 'linked.bin'));
    json.weightsManifest[0].paths = ['linked.bin'];
    await writeFile(join(dir, 'model.json'), JSON.stringify(json));
    await expect(loadModel(dir)).rejects.toThrow(/'linked.bin' leaves the model folder/);
  });

  it('loads sharded weights as tensorflowjs_converter writes them', async () => {
    const m = vggLike(3);
    const dir = freshDir();
    await saveModel(m, dir);
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    const bin = await readFile(join(dir, 'weights.bin'));
    const cut = Math.floor(bin.length / 2);
    await writeFile(join(dir, 'group1-shard1of2.bin'), bin.subarray(0, cut));
    await writeFile(join(dir, 'group1-shard2of2.bin'), bin.subarray(cut));
    await rm(join(dir, 'weights.bin'));
    json.weightsManifest[0].paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
    await writeFile(join(dir, 'model.json'), JSON.stringify(json));
    const loaded = keep(await loadModel(dir));
    const x = batch(16);
    expect(Array.from(predict(loaded, x))).toEqual(Array.from(predict(m, x)));
    x.dispose();
  });

  it('handler round trip keeps user metadata', async () => {
    const m = keep(buildBackbone('smallcnn', { inputShape: [16, 16, 3] }));
    m.setUserDefinedMetadata({ classes: ['a', 'b'] });
    const dir = freshDir();
    await m.save(fileSystemHandler(dir));
    const artifacts = await fileSystemHandler(dir).load!();
    expect(artifacts.userDefinedMetadata).toEqual({ classes: ['a', 'b'] });
    expect(artifacts.weightSpecs?.length).toBe(m.getWeights().length);
  });
});

describe('loadWeightsByName', () => {
  it('copies weights by layer name from a saved model into a build with another seed', async () => {
    const source = vggLike(1, { top: true }); // a classifier top the target lacks is ignored
    const dir = freshDir();
    await saveModel(source, dir);
    const target = vggLike(2);
    const x = batch(16);
    // Shares its layers with `source` (disposed with it).
    const sourceFeatures = tfl.model({
      inputs: source.inputs,
      outputs: source.getLayer('block2_pool').output,
    });
    const want = Array.from(predict(sourceFeatures, x));
    expect(Array.from(predict(target, x))).not.toEqual(want);
    const before = tf.memory().numTensors;
    const result = await loadWeightsByName(target, dir);
    expect(tf.memory().numTensors).toBe(before); // decoded tensors are disposed
    expect(result).toEqual({
      loaded: ['block1_conv1', 'block1_conv2', 'block2_conv1', 'block2_conv2'],
      skipped: [],
    });
    expect(Array.from(predict(target, x))).toEqual(want);
    x.dispose();
  });

  it('copies a whole smallcnn (different seed) from a saved model and from a LayersModel', async () => {
    const source = keep(buildBackbone('smallcnn', { inputShape: [32, 32, 3], seed: 1 }));
    const dir = freshDir();
    await saveModel(source, dir);
    const x = batch(32);
    const want = Array.from(predict(source, x));
    const fromFile = keep(buildBackbone('smallcnn', { inputShape: [32, 32, 3], seed: 2 }));
    expect(Array.from(predict(fromFile, x))).not.toEqual(want);
    const r = await loadWeightsByName(fromFile, dir);
    expect(r.loaded).toEqual([
      'block1_conv',
      'block1_bn',
      'block2_conv',
      'block2_bn',
      'block3_conv',
      'block3_bn',
      'block4_conv',
      'block4_bn',
    ]);
    expect(Array.from(predict(fromFile, x))).toEqual(want);
    const fromModel = keep(buildBackbone('smallcnn', { inputShape: [32, 32, 3], seed: 3 }));
    await loadWeightsByName(fromModel, source);
    expect(Array.from(predict(fromModel, x))).toEqual(want);
    // The copy is independent of the source.
    const zeros = tf.zeros([3, 3, 3, 32]);
    source.getLayer('block1_conv').setWeights([zeros]);
    zeros.dispose();
    expect(Array.from(predict(fromModel, x))).toEqual(want);
    x.dispose();
  });

  it('wrong architecture: names the missing layer and the source; skipMissing skips it', async () => {
    const dir = freshDir();
    await saveModel(vggLike(1), dir);
    const small = keep(buildBackbone('smallcnn', { inputShape: [16, 16, 3] }));
    await expect(loadWeightsByName(small, dir)).rejects.toThrow(
      `layer 'block1_conv' (weights kernel) is missing from ${dir}`,
    );
    const target = keep(buildBackbone('vgg16', { inputShape: [32, 32, 3], seed: 9 }));
    // skipMissing: the shapes of the blocks present must still match (vgg16's block1 has 64 filters).
    const wide = vggLike(1, { filters: 64 });
    const wideDir = freshDir();
    // Block 2 of vgg16 has 128 filters: keep only block1 for this check.
    const block1 = tfl.model({ inputs: wide.inputs, outputs: wide.getLayer('block1_pool').output });
    await saveModel(block1, wideDir);
    const before = target.getLayer('block2_conv1').getWeights()[0].dataSync().slice(0, 10);
    const r = await loadWeightsByName(target, wideDir, { skipMissing: true });
    expect(r.loaded).toEqual(['block1_conv1', 'block1_conv2']);
    expect(r.skipped).toEqual(
      target.layers
        .filter((l) => l.weights.length > 0)
        .map((l) => l.name)
        .slice(2),
    );
    expect(Array.from(target.getLayer('block2_conv1').getWeights()[0].dataSync().slice(0, 10))).toEqual(
      Array.from(before),
    );
    expect(Array.from(target.getLayer('block1_conv2').getWeights()[1].dataSync())).toEqual(
      Array.from(wide.getLayer('block1_conv2').getWeights()[1].dataSync()),
    );
    // Nothing in common at all is an error even with skipMissing.
    const other = keep(buildBackbone('smallcnn', { inputShape: [16, 16, 3] }));
    await expect(loadWeightsByName(other, dir, { skipMissing: true })).rejects.toThrow(
      /no layer of 'smallcnn' matches a layer of .*\(source layers: block1_conv1/,
    );
  });

  it('wrong shape: names the layer, the expected and found shapes and the source; target unchanged', async () => {
    const dir = freshDir();
    await saveModel(vggLike(1), dir);
    const target = vggLike(2, { channels: 4 });
    const before = Array.from(target.getLayer('block1_conv2').getWeights()[0].dataSync());
    await expect(loadWeightsByName(target, dir)).rejects.toThrow(
      `layer 'block1_conv1' weight 'kernel' expected shape [3,3,4,8], found [3,3,3,8] in ${dir}`,
    );
    // All checks run before any assignment.
    expect(Array.from(target.getLayer('block1_conv2').getWeights()[0].dataSync())).toEqual(before);

    const narrow = vggLike(3, { filters: 4 });
    await expect(loadWeightsByName(narrow, vggLike(4))).rejects.toThrow(
      "layer 'block1_conv1' weight 'kernel' expected shape [3,3,3,4], found [3,3,3,8] in model 'vgg16'",
    );
  });

  it('renumbers Keras 2.2 auto names (conv2d_1, ...) to tf.keras ones (conv2d, ...)', async () => {
    /** conv-BN twice with auto-style names starting at `first` (0 = tf.keras, 1 = Keras 2.2). */
    const autoNamed = (first: number, seed: number) => {
      const n = (p: string, i: number) => (i === 0 ? p : `${p}_${i}`);
      const input = tfl.input({ shape: [8, 8, 3] });
      let x = input as tfl.SymbolicTensor;
      for (let i = first; i < first + 2; i++) {
        x = tfl.layers
          .conv2d({
            filters: 4,
            kernelSize: 3,
            useBias: false,
            name: n('conv2d', i),
            kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + i }),
          })
          .apply(x) as tfl.SymbolicTensor;
        x = tfl.layers
          .batchNormalization({
            scale: false,
            name: n('batch_normalization', i),
            betaInitializer: tfl.initializers.randomNormal({ seed: seed + 10 + i }),
          })
          .apply(x) as tfl.SymbolicTensor;
      }
      return keep(tfl.model({ inputs: input, outputs: x }));
    };
    const source = autoNamed(1, 100);
    const dir = freshDir();
    await saveModel(source, dir);
    const target = autoNamed(0, 200);
    const x = tf.randomUniform([1, 8, 8, 3], 0, 1, 'float32', 1);
    const r = await loadWeightsByName(target, dir);
    expect(r.loaded).toEqual(['conv2d', 'batch_normalization', 'conv2d_1', 'batch_normalization_1']);
    expect(Array.from(predict(target, x))).toEqual(Array.from(predict(source, x)));
    x.dispose();
  });

  it('weight count mismatch names the layer', async () => {
    const input = tfl.input({ shape: [4] });
    const a = keep(
      tfl.model({
        inputs: input,
        outputs: tfl.layers.dense({ units: 2, name: 'fc' }).apply(input) as tfl.SymbolicTensor,
      }),
    );
    const input2 = tfl.input({ shape: [4] });
    const b = keep(
      tfl.model({
        inputs: input2,
        outputs: tfl.layers
          .dense({ units: 2, useBias: false, name: 'fc' })
          .apply(input2) as tfl.SymbolicTensor,
      }),
    );
    await expect(loadWeightsByName(a, b)).rejects.toThrow(
      "layer 'fc' expects 2 weights (kernel, bias) but model",
    );
  });
});

describe('http loading', () => {
  let server: Server;
  let base: string;
  let dir: string;
  const requests: string[] = [];

  beforeAll(async () => {
    dir = freshDir();
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const file = join(dir, (req.url ?? '/').split('?')[0].replace(/^\/+/, ''));
      stat(file).then(
        (s) => {
          res.writeHead(200, {
            'content-length': s.size,
            'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
          });
          createReadStream(file).pipe(res);
        },
        () => {
          res.writeHead(404);
          res.end('not found');
        },
      );
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((ok) => server.close(() => ok()));
  });

  it('loads a model and its weights over http', async () => {
    const m = keep(buildBackbone('smallcnn', { inputShape: [32, 32, 3], seed: 8 }));
    await saveModel(m, dir);
    const x = batch(32);
    const want = Array.from(predict(m, x));

    const loaded = keep(await loadModel(`${base}/model.json`));
    expect(Array.from(predict(loaded, x))).toEqual(want);
    expect(requests).toEqual(['/model.json', '/weights.bin']);

    // A folder URL gets model.json appended; loadWeightsByName reads URLs too.
    const target = keep(buildBackbone('smallcnn', { inputShape: [32, 32, 3], seed: 9 }));
    const r = await loadWeightsByName(target, `${base}/`);
    expect(r.loaded).toHaveLength(8);
    expect(Array.from(predict(target, x))).toEqual(want);
    x.dispose();

    await expect(loadModel(`${base}/nothing/model.json`)).rejects.toThrow(/404/);
  });
});
