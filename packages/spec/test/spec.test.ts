import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BACKBONE_NAMES,
  BACKBONES,
  canonicalJson,
  csvCell,
  expandSweep,
  gridSize,
  MAX_SWEEP_CONFIG_BYTES,
  PACKAGED_WEIGHTS,
  parseRunConfig,
  parseSweepSpec,
  RunConfig,
  runConfigHash,
  SpecError,
  SweepSpec,
  sha256Hex,
  sweepConfigBytes,
  weightsKind,
} from '../src/index.ts';

const run = {
  dataset: 'generated:flowers17',
  backbone: 'smallcnn',
  weights: 'none',
  trainable: 'all',
  head: 'gap',
  optimizer: 'adam',
  lr: 1e-3,
  decay: 0,
  batchSize: 8,
  epochs: 2,
  seed: 0,
  size: 32,
} as const;
const sweep = {
  name: 'heads',
  datasets: ['generated:flowers17'],
  backbones: ['smallcnn'],
  heads: ['fc', 'gap', 'gmp'],
  optimizers: ['adam'],
  lr: 1e-3,
  batchSize: 8,
  epochs: 2,
  size: 32,
};

/** The problems a SpecError lists (fails the test when the input is accepted). */
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof SpecError) return e.problems;
    throw e;
  }
  throw new Error('accepted');
}

describe('run config', () => {
  it('accepts a valid config as is', () => {
    expect(parseRunConfig(run)).toEqual(run);
  });

  it('names every bad field with what is valid', () => {
    expect(problems(() => parseRunConfig({ ...run, head: 'gapp', batchSize: 0, extra: 1 }))).toEqual([
      "head: 'gapp' is not one of fc, gap, gmp, avgmax, catavgmax, gem, nin",
      'batchSize: 0 is not an integer in [1, 4096]',
      expect.stringMatching(/^\(input\): unknown field 'extra' \(valid: dataset, classes, /),
    ]);
    const { lr: _lr, ...noLr } = run;
    expect(problems(() => parseRunConfig(noLr))).toEqual(['lr: missing (a number in (0, 10])']);
    expect(problems(() => parseRunConfig({ ...run, dropout: 1, size: 4096 }))).toEqual([
      'dropout: 1 is not a number in [0, 0.95]',
      'size: 4096 is not an integer in [8, 1024]',
    ]);
  });

  it("checks fields against the backbone's facts", () => {
    expect(problems(() => parseRunConfig({ ...run, backbone: 'inceptionv3', size: 64 }))).toEqual([
      'size: inceptionv3 needs inputs of at least 75x75 pixels (got 64)',
    ]);
    expect(problems(() => parseRunConfig({ ...run, backbone: 'vgg16', alpha: 0.5, trainable: 6 }))).toEqual([
      'trainable: vgg16 has 5 blocks; trainable 6 is more than that',
      'alpha: only mobilenetv2 has a width multiplier (backbone is vgg16)',
    ]);
    expect(problems(() => parseRunConfig({ ...run, backbone: 'mobilenetv2', alpha: 0.6 }))).toEqual([
      'alpha: must be one of 0.35, 0.5, 0.75, 1, 1.3, 1.4',
    ]);
    for (const name of BACKBONE_NAMES) {
      const { minSize } = BACKBONES[name];
      expect(RunConfig.safeParse({ ...run, backbone: name, size: minSize }).success).toBe(true);
      expect(RunConfig.safeParse({ ...run, backbone: name, size: minSize - 1 }).success).toBe(false);
    }
  });

  it('bounds strings and lists and refuses unknown augment keys', () => {
    expect(problems(() => parseRunConfig({ ...run, classes: ['a', 'b'.repeat(129)] }))).toEqual([
      'classes.1: is 129 characters long; the limit is 128',
    ]);
    expect(problems(() => parseRunConfig({ ...run, classes: ['a', 'a'] }))).toEqual([
      'classes: lists a class twice',
    ]);
    expect(problems(() => parseRunConfig({ ...run, augment: { flip: true, shift: 2 } }))).toEqual([
      'augment.shift: 2 is not a number in [0, 0.5]',
      "augment: unknown field 'flip' (valid: horizontalFlip, shift, rotation)",
    ]);
    expect(problems(() => parseRunConfig({ ...run, dataset: 'a\u0000b' }))).toEqual([
      'dataset: must not contain control characters',
    ]);
  });

  it('takes the weights forms trainers know and nothing else', () => {
    expect(
      [
        'none',
        'run:2f0c1a7e-0000-4000-8000-000000000000',
        'run:smallcnn-fc-s0-abc123',
        'npm:@tfjs-models/mobilenet/v2',
        'npm:pkg/model',
        'https://host/m/model.json',
        'models/vgg16',
        'C:\\m\\model.json',
      ].map(weightsKind),
    ).toEqual(['none', 'run', 'run', 'npm', 'npm', 'url', 'path', 'path']);
    for (const bad of ['file:///etc/passwd', 'run:', 'run:a b', 'npm:nomodel', 'ftp://host/m', 'https://']) {
      expect(weightsKind(bad), bad).toBeNull();
      expect(RunConfig.safeParse({ ...run, weights: bad }).success, bad).toBe(false);
    }
    expect(RunConfig.safeParse({ ...run, weights: `models/${'x'.repeat(1000)}` }).success).toBe(false);
    for (const bad of [
      'npm:nsfwjs/..',
      'npm:nsfwjs/a.b',
      'npm:../x/y',
      'npm:Upper/m',
      `npm:p/${'m'.repeat(65)}`,
    ])
      expect(weightsKind(bad), bad).toBeNull();
  });

  it('knows which backbone each packaged model fits', () => {
    expect(PACKAGED_WEIGHTS.map((p) => [p.ref, p.backbone, p.size])).toEqual([
      ['npm:nsfwjs/mobilenet_v2', 'mobilenetv2', 224],
      ['npm:nsfwjs/inception_v3', 'inceptionv3', 299],
    ]);
    const mobile = { ...run, backbone: 'mobilenetv2', weights: 'npm:nsfwjs/mobilenet_v2', size: 224 };
    expect(RunConfig.safeParse(mobile).success).toBe(true);
    expect(problems(() => parseRunConfig({ ...mobile, backbone: 'inceptionv3' }))).toEqual([
      'weights: npm:nsfwjs/mobilenet_v2 holds mobilenetv2 weights; the backbone is inceptionv3',
    ]);
    expect(problems(() => parseRunConfig({ ...mobile, alpha: 0.5 }))).toEqual([
      'weights: npm:nsfwjs/mobilenet_v2 holds mobilenetv2 weights at alpha 1; the run asks for alpha 0.5',
    ]);
    expect(
      problems(() =>
        parseSweepSpec({
          ...sweep,
          backbones: ['mobilenetv2', 'smallcnn'],
          weights: ['npm:nsfwjs/mobilenet_v2'],
        }),
      ),
    ).toEqual(['weights: npm:nsfwjs/mobilenet_v2 holds mobilenetv2 weights; the backbone is smallcnn']);
  });
});

describe('sweep spec', () => {
  it('fills defaults and expands the grid in a stable order, each run a valid config', () => {
    const spec = parseSweepSpec({ ...sweep, seeds: [0, 1], lr: [1e-3, 1e-4] });
    expect(spec.weights).toEqual(['none']);
    expect(spec.trainable).toBe('frozen');
    expect(spec.decay).toBe(0);
    expect(spec.maxAttempts).toBe(3);
    const runs = expandSweep(spec);
    expect(runs).toHaveLength(gridSize(spec));
    expect(runs.map((r) => `${r.head}/${r.lr}/${r.seed}`)).toEqual([
      'fc/0.001/0',
      'fc/0.001/1',
      'fc/0.0001/0',
      'fc/0.0001/1',
      'gap/0.001/0',
      'gap/0.001/1',
      'gap/0.0001/0',
      'gap/0.0001/1',
      'gmp/0.001/0',
      'gmp/0.001/1',
      'gmp/0.0001/0',
      'gmp/0.0001/1',
    ]);
    for (const r of runs) expect(parseRunConfig(r)).toEqual(r);
    expect(new Set(runs.map(runConfigHash)).size).toBe(runs.length);
  });

  it('gives alpha only to backbones with a width multiplier, and refuses it without one', () => {
    const runs = expandSweep(
      parseSweepSpec({ ...sweep, backbones: ['mobilenetv2', 'vgg16'], heads: ['gap'], alpha: 0.5 }),
    );
    expect(runs.map((r) => [r.backbone, r.alpha])).toEqual([
      ['mobilenetv2', 0.5],
      ['vgg16', undefined],
    ]);
    expect(problems(() => parseSweepSpec({ ...sweep, alpha: 0.5 }))).toEqual([
      'alpha: only mobilenetv2 has a width multiplier (backbones: smallcnn)',
    ]);
  });

  it('names the field a trainer would have failed on, for every backbone of the grid', () => {
    expect(problems(() => parseSweepSpec({ ...sweep, backbones: ['inceptionv3'], size: 64 }))).toEqual([
      'size: inceptionv3 needs inputs of at least 75x75 pixels (got 64)',
    ]);
    expect(problems(() => parseSweepSpec({ ...sweep, backbones: ['vgg16', 'smallcnn'], size: 8 }))).toEqual([
      'size: vgg16 needs inputs of at least 32x32 pixels (got 8)',
      'size: smallcnn needs inputs of at least 16x16 pixels (got 8)',
    ]);
    expect(problems(() => parseSweepSpec({ ...sweep, trainable: [2, 5] }))).toEqual([
      'trainable: smallcnn has 4 blocks; trainable 5 is more than that',
    ]);
    expect(problems(() => parseSweepSpec({ ...sweep, heads: ['gap', 'gap'] }))).toEqual([
      'heads: lists "gap" twice (the runs would be the same)',
    ]);
    expect(problems(() => parseSweepSpec({ ...sweep, requires: { gpu: true, ram: 1 } }))).toEqual([
      "requires: unknown field 'ram' (valid: gpu, backend)",
    ]);
  });

  it('caps the grid and the bytes of all its configs before building any', () => {
    const seeds = Array.from({ length: 1000 }, (_, i) => i);
    expect(
      problems(() =>
        parseSweepSpec({
          ...sweep,
          seeds,
          heads: ['fc', 'gap', 'gmp', 'gem', 'avgmax', 'catavgmax'],
          optimizers: ['adam', 'sgd'],
        }),
      ),
    ).toEqual([expect.stringMatching(/^\(input\): the grid has 12000 runs .*; the limit is 10000$/)]);
    // The attack of issue 15: long class lists copied into thousands of runs.
    const classes = Array.from({ length: 1000 }, (_, i) => `${'c'.repeat(120)}${i}`);
    const big = { ...sweep, classes, seeds: seeds.slice(0, 50) };
    const started = performance.now();
    expect(problems(() => parseSweepSpec(big))).toEqual([
      expect.stringMatching(
        /^\(input\): the sweep's 150 run configs would take up to \d+ bytes; the limit is 16777216/,
      ),
    ]);
    expect(performance.now() - started).toBeLessThan(2000);
    // The bound is an upper bound of what expansion really builds.
    const ok = parseSweepSpec({ ...sweep, classes: classes.slice(0, 10), seeds: [0, 1], lr: [1e-3, 1e-2] });
    const real = expandSweep(ok).reduce((n, r) => n + JSON.stringify(r).length, 0);
    expect(sweepConfigBytes(ok)).toBeGreaterThanOrEqual(real);
    expect(sweepConfigBytes(ok)).toBeLessThan(MAX_SWEEP_CONFIG_BYTES);
  });

  it('is strict: a misspelt field is an error, not silently ignored', () => {
    expect(SweepSpec.safeParse({ ...sweep, epoch: 3 }).success).toBe(false);
  });
});

describe('canonical JSON and hashes', () => {
  it('sorts keys at every depth and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: undefined }], c: null } })).toBe(
      '{"a":{"c":null,"d":[1,{"f":2}]},"b":1}',
    );
  });

  it('computes the same SHA-256 as node:crypto', () => {
    for (const text of [
      '',
      'abc',
      'é€😀'.repeat(50),
      'x'.repeat(55),
      'x'.repeat(56),
      'x'.repeat(64),
      'y'.repeat(10_000),
    ])
      expect(sha256Hex(text)).toBe(createHash('sha256').update(text).digest('hex'));
  });

  it('hashes what a run computes: nested values count, key order and requires do not', () => {
    const a = parseRunConfig({ ...run, earlyStopping: { monitor: 'val_loss', patience: 3 } });
    const b = parseRunConfig({ ...run, earlyStopping: { monitor: 'val_loss', patience: 4 } });
    expect(runConfigHash(a)).not.toBe(runConfigHash(b));
    const reordered = Object.fromEntries(Object.entries(a).reverse()) as typeof a;
    expect(runConfigHash(reordered)).toBe(runConfigHash(a));
    expect(runConfigHash({ ...a, requires: { gpu: true } })).toBe(runConfigHash(a));
    // Flat configs keep the hash the trainers stored in checkpoints before spec existed.
    const flat = JSON.stringify(run, Object.keys(run).sort());
    expect(runConfigHash(run)).toBe(createHash('sha256').update(flat).digest('hex').slice(0, 16));
  });
});

describe('CSV cells', () => {
  it('quotes, writes objects as canonical JSON, and keeps formulas out of spreadsheets', () => {
    expect(csvCell('a,"b"')).toBe('"a,""b"""');
    expect(csvCell({ b: 1, a: 2 })).toBe('"{""a"":2,""b"":1}"');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell(-0.5)).toBe('-0.5');
    for (const attack of ['=HYPERLINK("http://x")', '+1', '-1+1', '@SUM(A1)', '\tx'])
      expect(csvCell(attack).replace(/^"/, '')[0]).toBe("'");
  });
});
