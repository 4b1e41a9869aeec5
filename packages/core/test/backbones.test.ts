import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BACKBONE_NAMES, type BackboneName } from '../src/config.js';
import {
  BACKBONES,
  backboneBlocks,
  buildBackbone,
  makeDivisible,
  setTrainable,
} from '../src/models/backbones/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const built: tfl.LayersModel[] = [];
function build(name: BackboneName, size: number, opts: { alpha?: number; seed?: number } = {}) {
  const m = buildBackbone(name, { inputShape: [size, size, 3], ...opts });
  built.push(m);
  return m;
}
afterEach(() => {
  for (const m of built.splice(0)) m.dispose();
});

const names = (m: tfl.LayersModel) => m.layers.map((l) => l.name);
const layer = (m: tfl.LayersModel, name: string) => m.getLayer(name);

describe('parameter counts equal keras.applications (include_top=False, 224x224x3 / 299x299x3)', () => {
  it.each([
    ['vgg16', 224, 14_714_688, 19],
    ['vgg19', 224, 20_024_384, 22],
    ['inceptionv3', 299, 21_802_784, 311],
    ['resnet50', 224, 23_587_712, 175],
    ['mobilenetv2', 224, 2_257_984, 155],
  ] as const)('%s', (name, size, params, layers) => {
    const m = build(name, size);
    expect(m.countParams()).toBe(params);
    expect(m.layers.length).toBe(layers);
    expect(m.name).toBe(name);
  });

  it('mobilenetv2 width multipliers', () => {
    const counts: Record<number, number> = {};
    for (const alpha of [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]) {
      const m = build('mobilenetv2', 224, { alpha });
      counts[alpha] = m.countParams();
      // Conv_1 stays 1280 wide for alpha <= 1, is scaled above.
      expect(m.outputs[0].shape).toEqual([null, 7, 7, alpha > 1 ? makeDivisible(1280 * alpha) : 1280]);
      expect(layer(m, 'Conv1').getWeights()[0].shape[3]).toBe(makeDivisible(32 * alpha));
      m.dispose();
      built.pop();
    }
    expect(counts[1.0]).toBe(2_257_984);
    expect(counts[0.35]).toBe(410_208);
    expect(counts[1.4]).toBe(4_363_712);
    const sorted = Object.keys(counts)
      .map(Number)
      .sort((a, b) => a - b)
      .map((a) => counts[a]);
    expect([...sorted].sort((a, b) => a - b)).toEqual(sorted);
    expect(() => buildBackbone('mobilenetv2', { inputShape: [224, 224, 3], alpha: 0.6 })).toThrow(
      /mobilenetv2: alpha 0.6 .*0.35, 0.5, 0.75, 1, 1.3, 1.4/,
    );
  });

  it('makeDivisible follows the TF-slim rule', () => {
    expect(makeDivisible(32 * 0.35)).toBe(16);
    expect(makeDivisible(16 * 0.35)).toBe(8);
    expect(makeDivisible(24 * 0.75)).toBe(24); // 18 → 16 would lose > 10%
    expect(makeDivisible(1280 * 1.4)).toBe(1792);
  });
});

describe('Keras layer names and structure', () => {
  it('vgg16: block names, conv biases, output block5_pool', () => {
    const m = build('vgg16', 64);
    const expected = ['input_1'];
    [2, 2, 3, 3, 3].forEach((n, b) => {
      for (let c = 1; c <= n; c++) expected.push(`block${b + 1}_conv${c}`);
      expected.push(`block${b + 1}_pool`);
    });
    expect(names(m)).toEqual(expected);
    expect(
      layer(m, 'block3_conv3')
        .getWeights()
        .map((w) => w.shape),
    ).toEqual([[3, 3, 256, 256], [256]]);
    expect(m.outputs[0].shape).toEqual([null, 2, 2, 512]);
  });

  it('vgg19 has a fourth conv in blocks 3–5', () => {
    const m = build('vgg19', 32);
    for (const b of [3, 4, 5]) expect(names(m)).toContain(`block${b}_conv4`);
    expect(names(m)).not.toContain('block2_conv3');
  });

  it('resnet50: paddings, conv biases + BN, projection shortcuts, output conv5_block3_out', () => {
    const m = build('resnet50', 224);
    const n = names(m);
    expect(n.slice(0, 7)).toEqual([
      'input_1',
      'conv1_pad',
      'conv1_conv',
      'conv1_bn',
      'conv1_relu',
      'pool1_pad',
      'pool1_pool',
    ]);
    expect(n[n.length - 1]).toBe('conv5_block3_out');
    expect(
      layer(m, 'conv1_conv')
        .getWeights()
        .map((w) => w.shape),
    ).toEqual([[7, 7, 3, 64], [64]]);
    expect(layer(m, 'conv1_bn').getWeights()).toHaveLength(4); // gamma, beta, moving mean, variance
    for (const stage of [2, 3, 4, 5]) {
      expect(n).toContain(`conv${stage}_block1_0_conv`);
      expect(n).not.toContain(`conv${stage}_block2_0_conv`);
    }
    expect(n).toContain('conv4_block6_add');
    expect(m.outputs[0].shape).toEqual([null, 7, 7, 2048]);
  });

  it('inceptionv3: tf.keras automatic names, convs without bias, BN without scale', () => {
    const m = build('inceptionv3', 299);
    const n = names(m);
    for (let i = 0; i <= 10; i++) expect(n).toContain(`mixed${i}`);
    for (const x of ['mixed9_0', 'mixed9_1', 'concatenate', 'concatenate_1', 'conv2d', 'conv2d_93']) {
      expect(n).toContain(x);
    }
    expect(n).not.toContain('conv2d_94');
    expect(n).toContain('batch_normalization_93');
    expect(n).toContain('activation_93');
    expect(n[n.length - 1]).toBe('mixed10');
    expect(
      layer(m, 'conv2d')
        .getWeights()
        .map((w) => w.shape),
    ).toEqual([[3, 3, 3, 32]]);
    expect(layer(m, 'batch_normalization').getWeights()).toHaveLength(3); // beta, moving mean, variance
    expect(m.outputs[0].shape).toEqual([null, 8, 8, 2048]);
  });

  it('mobilenetv2: Conv1_pad, expanded_conv_*, block_{i}_*, ReLU6, Conv_1', () => {
    const m = build('mobilenetv2', 224);
    const n = names(m);
    expect(n.slice(0, 5)).toEqual(['input_1', 'Conv1_pad', 'Conv1', 'bn_Conv1', 'Conv1_relu']);
    expect(n.slice(-3)).toEqual(['Conv_1', 'Conv_1_bn', 'out_relu']);
    for (const x of [
      'expanded_conv_depthwise',
      'expanded_conv_project_BN',
      'block_1_pad',
      'block_16_project',
    ]) {
      expect(n).toContain(x);
    }
    expect(n).not.toContain('expanded_conv_add');
    expect(n).toContain('block_2_add');
    expect(n).not.toContain('block_3_add');
    const relu = layer(m, 'block_5_expand_relu');
    expect(relu.getClassName()).toBe('ReLU');
    expect(relu.getConfig().maxValue).toBe(6);
    expect(layer(m, 'bn_Conv1').getConfig().momentum).toBe(0.999);
  });

  it('smallcnn and nin', () => {
    const s = build('smallcnn', 32);
    expect(names(s)).toEqual([
      'input_1',
      ...[1, 2, 3, 4].flatMap((i) => ['conv', 'bn', 'relu', 'pool'].map((k) => `block${i}_${k}`)),
    ]);
    expect(s.outputs[0].shape).toEqual([null, 2, 2, 128]);
    const n = build('nin', 32);
    expect(names(n)).toContain('mlpconv2_cccp1');
    expect(names(n)).toContain('mlpconv1_dropout');
    expect(n.outputs[0].shape).toEqual([null, 8, 8, 192]);
  });
});

describe('input sizes', () => {
  it.each([
    ['vgg16', 32],
    ['vgg19', 32],
    ['resnet50', 32],
    ['mobilenetv2', 32],
    ['inceptionv3', 75],
    ['smallcnn', 16],
    ['nin', 8],
  ] as const)('%s runs forward at its minimum size %i and rejects one pixel less', (name, min) => {
    expect(BACKBONES[name].minSize).toBe(min);
    const m = build(name, min, { seed: 1 });
    const out = tf.tidy(
      () => m.predict(tf.randomUniform([1, min, min, 3], -1, 1, 'float32', 2)) as tf.Tensor,
    );
    expect(out.rank).toBe(4);
    expect(out.shape.slice(1)).toEqual(m.outputs[0].shape.slice(1));
    expect(out.shape[1]).toBeGreaterThanOrEqual(1);
    expect(Number.isFinite(tf.sum(out).dataSync()[0])).toBe(true);
    out.dispose();
    expect(() => buildBackbone(name, { inputShape: [min - 1, min, 3] })).toThrow(
      new RegExp(`${name} needs inputs of at least ${min}x${min} pixels \\(got ${min - 1}x${min}\\)`),
    );
  });

  it('odd and non-square sizes follow Keras padding (mobilenetv2 correct_pad, resnet50)', () => {
    const mb = buildBackbone('mobilenetv2', { inputShape: [33, 47, 3] });
    built.push(mb);
    expect(layer(mb, 'Conv1_pad').getConfig().padding).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(mb.outputs[0].shape).toEqual([null, 2, 2, 1280]);
    const r = buildBackbone('resnet50', { inputShape: [33, 64, 3] });
    built.push(r);
    expect(r.outputs[0].shape).toEqual([null, 2, 2, 2048]);
    const out = tf.tidy(() => mb.predict(tf.ones([1, 33, 47, 3])) as tf.Tensor);
    expect(out.shape).toEqual([1, 2, 2, 1280]);
    out.dispose();
  });

  it('rejects bad shapes and unknown names', () => {
    expect(() => buildBackbone('vgg16', { inputShape: [32, 32.5, 3] })).toThrow(/vgg16: inputShape/);
    expect(() => buildBackbone('nope' as BackboneName, { inputShape: [32, 32, 3] })).toThrow(
      /unknown backbone 'nope'.*vgg16/,
    );
  });
});

describe('seeded initialisation', () => {
  /** Per weight tensor: its bytes (compared with Buffer.equals: fast on millions of floats). */
  const weightsOf = (m: tfl.LayersModel) =>
    m.getWeights().map((w) => {
      const v = w.dataSync() as Float32Array;
      return Buffer.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    });
  const same = (a: Buffer[], b: Buffer[]) => a.map((x, i) => x.equals(b[i]));

  // The seeding lives in the shared layer factory; vgg19 / inceptionv3 add nothing but build time.
  it.each(BACKBONE_NAMES.filter((n) => n !== 'vgg19' && n !== 'inceptionv3'))(
    '%s: same seed ⇒ identical weights, other seed ⇒ different kernels',
    (name) => {
      const size = BACKBONES[name].minSize;
      const a = weightsOf(build(name, size, { seed: 42 }));
      const b = weightsOf(build(name, size, { seed: 42 }));
      const c = weightsOf(build(name, size, { seed: 43 }));
      for (const m of built.splice(0)) m.dispose();
      expect(a.length).toBe(b.length);
      expect(same(a, b).every(Boolean)).toBe(true);
      // Kernels differ; BN gammas/betas/statistics and biases are constants in both.
      const randomIdx = a
        .map((_x, i) => i)
        .filter((i) => a[i].length > 0 && new Set(a[i].subarray(0, 64)).size > 4);
      expect(randomIdx.length).toBeGreaterThan(0);
      expect(randomIdx.every((i) => !a[i].equals(c[i]))).toBe(true);
    },
  );

  it('layers of the same shape get different draws', () => {
    const m = build('vgg16', 32, { seed: 7 });
    const k2 = layer(m, 'block5_conv2').getWeights()[0].dataSync();
    const k3 = layer(m, 'block5_conv3').getWeights()[0].dataSync();
    expect(Array.from(k2.slice(0, 100))).not.toEqual(Array.from(k3.slice(0, 100)));
  });
});

describe('backboneBlocks', () => {
  it.each([
    ['vgg16', 32],
    ['vgg19', 32],
    ['resnet50', 32],
    ['inceptionv3', 75],
    ['mobilenetv2', 32],
    ['smallcnn', 16],
    ['nin', 8],
  ] as const)('%s: blocks cover every layer in order', (name, size) => {
    const m = build(name, size);
    const blocks = backboneBlocks(name, m);
    expect(blocks).toHaveLength(BACKBONES[name].blocks);
    expect(blocks.flat()).toEqual(names(m));
    expect(blocks[0][0]).toBe('input_1');
    expect(blocks.every((b) => b.length > 0)).toBe(true);
  });

  it('groups by Keras block', () => {
    const vgg = build('vgg16', 32);
    const vb = backboneBlocks('vgg16', vgg);
    expect(vb[4]).toEqual(['block5_conv1', 'block5_conv2', 'block5_conv3', 'block5_pool']);
    const res = build('resnet50', 32);
    const rb = backboneBlocks('resnet50', res);
    expect(rb[0]).toEqual(names(res).slice(0, 7));
    expect(rb.map((b) => b.every((l) => l.startsWith(b[b.length - 1].slice(0, 5))))).toEqual([
      false, // input_1 goes with conv1
      true,
      true,
      true,
      true,
    ]);
    expect(rb[4][rb[4].length - 1]).toBe('conv5_block3_out');
    const inc = build('inceptionv3', 75);
    const ib = backboneBlocks('inceptionv3', inc);
    expect(ib[0][ib[0].length - 1]).toBe('max_pooling2d_1');
    expect(ib.slice(1).map((b) => b[b.length - 1])).toEqual(
      Array.from({ length: 11 }, (_, i) => `mixed${i}`),
    );
    const mb = build('mobilenetv2', 32);
    const mbb = backboneBlocks('mobilenetv2', mb);
    expect(mbb[0]).toEqual(['input_1', 'Conv1_pad', 'Conv1', 'bn_Conv1', 'Conv1_relu']);
    expect(mbb[1].every((l) => l.startsWith('expanded_conv_'))).toBe(true);
    expect(mbb[17].every((l) => l.startsWith('block_16_'))).toBe(true);
    expect(mbb[18]).toEqual(['Conv_1', 'Conv_1_bn', 'out_relu']);
  });

  it('rejects a model of another backbone', () => {
    const m = build('smallcnn', 16);
    expect(() => backboneBlocks('vgg16', m)).toThrow(
      /does not look like a vgg16 backbone: found 4 blocks, expected 5/,
    );
  });
});

describe('setTrainable', () => {
  const trainableNames = (m: tfl.LayersModel) =>
    m.trainableWeights.map((w) => w.originalName.split('/')[0]).filter((v, i, a) => a.indexOf(v) === i);

  it('frozen, all and last N blocks', () => {
    const m = build('vgg16', 32);
    setTrainable(m, 'vgg16', 'frozen');
    expect(m.trainableWeights).toHaveLength(0);
    expect(m.nonTrainableWeights).toHaveLength(26);
    setTrainable(m, 'vgg16', 'all');
    expect(m.trainableWeights).toHaveLength(26);
    setTrainable(m, 'vgg16', 1);
    expect(trainableNames(m)).toEqual(['block5_conv1', 'block5_conv2', 'block5_conv3']);
    setTrainable(m, 'vgg16', 2);
    expect(m.trainableWeights).toHaveLength(12);
    setTrainable(m, 'vgg16', 0);
    expect(m.trainableWeights).toHaveLength(0);
    setTrainable(m, 'vgg16', 5);
    expect(m.trainableWeights).toHaveLength(26);
  });

  it('BN layers of frozen blocks are frozen too', () => {
    const m = build('mobilenetv2', 32);
    setTrainable(m, 'mobilenetv2', 2);
    expect(trainableNames(m)).toEqual([
      'block_16_expand',
      'block_16_expand_BN',
      'block_16_depthwise',
      'block_16_depthwise_BN',
      'block_16_project',
      'block_16_project_BN',
      'Conv_1',
      'Conv_1_bn',
    ]);
    expect(layer(m, 'block_15_project_BN').trainable).toBe(false);
    expect(layer(m, 'block_16_project_BN').trainable).toBe(true);
  });

  it('rejects N out of range and says the valid range', () => {
    const m = build('smallcnn', 16);
    expect(() => setTrainable(m, 'smallcnn', 5)).toThrow(/trainable 5 is out of range for smallcnn.*0 to 4/);
    expect(() => setTrainable(m, 'smallcnn', -1)).toThrow(/0 to 4/);
    expect(() => setTrainable(m, 'smallcnn', 1.5)).toThrow(/trainable 1.5 is invalid.*0 to 4/);
  });

  it('frozen BatchNorm layers keep their moving statistics during fit, trainable ones update', async () => {
    const m = build('smallcnn', 16, { seed: 3 });
    setTrainable(m, 'smallcnn', 2);
    m.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
    const stats = (name: string) => Array.from(layer(m, name).getWeights()[2].dataSync()); // moving mean
    const kernel = (name: string) => Array.from(layer(m, name).getWeights()[0].dataSync());
    const before = {
      bn1: stats('block1_bn'),
      bn4: stats('block4_bn'),
      conv1: kernel('block1_conv'),
      conv4: kernel('block4_conv'),
    };
    const x = tf.randomUniform([4, 16, 16, 3], 0, 1, 'float32', 5);
    const y = tf.randomUniform([4, 1, 1, 128], 0, 1, 'float32', 6);
    await m.fit(x, y, { epochs: 1, batchSize: 4, verbose: 0 });
    x.dispose();
    y.dispose();
    expect(stats('block1_bn')).toEqual(before.bn1);
    expect(kernel('block1_conv')).toEqual(before.conv1);
    expect(stats('block4_bn')).not.toEqual(before.bn4);
    expect(kernel('block4_conv')).not.toEqual(before.conv4);
  });
});

describe('BACKBONES', () => {
  it('describes every backbone with its Keras preprocessing', () => {
    expect(Object.keys(BACKBONES).sort()).toEqual([...BACKBONE_NAMES].sort());
    expect(BACKBONES.vgg16.preprocess).toBe('caffe');
    expect(BACKBONES.vgg19.preprocess).toBe('caffe');
    expect(BACKBONES.resnet50.preprocess).toBe('caffe');
    expect(BACKBONES.inceptionv3.preprocess).toBe('tf');
    expect(BACKBONES.mobilenetv2.preprocess).toBe('tf');
    expect(BACKBONES.smallcnn.preprocess).toBe('tf');
    expect(BACKBONES.nin.preprocess).toBe('tf');
    expect(BACKBONES.inceptionv3.defaultSize).toBe(299);
    for (const name of BACKBONE_NAMES) {
      expect(BACKBONES[name].defaultSize).toBeGreaterThanOrEqual(BACKBONES[name].minSize);
      expect(BACKBONES[name].description.length).toBeGreaterThan(10);
    }
  });
});
