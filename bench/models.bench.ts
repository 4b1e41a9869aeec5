// Throughput of backbones and heads on the default backend (wasm here, tfjs-node on GPU machines), and
// what the frozen-feature cache buys: a 6-head × 3-seed comparison on packaged pretrained weights vs one head.
// Run: npx tsx bench/models.bench.ts [--quick] [--pretrained-only] [--no-comparison] [--comparison-epochs N]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BackboneName,
  buildBackbone,
  buildHead,
  dequantizeWeights,
  HEAD_NAMES,
  loadWeightsByName,
  makeOptimizer,
  packagedWeightsDir,
  readPackagedFolder,
  trainRun,
} from '@headbench/core';
import { fuseForInference, initBackend } from '@headbench/engine';
import { packagedWeights, parseRunConfig } from '@headbench/spec';
import * as tf from '@tensorflow/tfjs-core';

const quick = process.argv.includes('--quick');
const pretrainedOnly = process.argv.includes('--pretrained-only');
const noComparison = process.argv.includes('--no-comparison');
const epochsFlag = process.argv.indexOf('--comparison-epochs');
const comparisonEpochs = epochsFlag > 0 ? Number(process.argv[epochsFlag + 1]) : quick ? 1 : 3;
const backend = await initBackend('auto');
console.log(`backend: ${backend.name} (threads ${backend.threads})`);

/** Images per second of `fn(batch)` over at least `seconds`, after one warm-up call. */
async function throughput(batch: number, seconds: number, fn: () => Promise<void>): Promise<number> {
  await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await fn();
    n += batch;
  }
  return n / ((performance.now() - t0) / 1000);
}

const rows: string[][] = [];
const home = await mkdtemp(join(tmpdir(), 'headbench-bench-'));

/** Load `npm:<package>/<model>` weights into `model` (the package read once into `home`). */
async function loadPackaged(model: ReturnType<typeof buildBackbone>, ref: string) {
  const folder = (await readPackagedFolder(await packagedWeightsDir(ref, home), ref))!;
  await loadWeightsByName(model, { label: ref, weights: dequantizeWeights(folder.weightSpecs, folder.data) });
}

const feature = async (name: BackboneName, size: number, batch: number, alpha?: number, weights?: string) => {
  const model = buildBackbone(name, { inputShape: [size, size, 3], alpha, seed: 0 });
  if (weights) await loadPackaged(model, weights);
  const x = tf.randomUniform([batch, size, size, 3], -1, 1);
  // As feature extraction runs it: BN folded into the convs, ReLUs fused (packages/engine inference/fuse.ts).
  const graph = fuseForInference(model);
  const ips = await throughput(batch, quick ? 2 : 6, async () => {
    const y = graph.predict(x) as tf.Tensor;
    await y.data();
    y.dispose();
  });
  rows.push([
    `features ${name}${alpha ? ` α${alpha}` : ''} ${size}x${size}${weights ? ` (${weights})` : ''}`,
    `batch ${batch}`,
    ips.toFixed(2),
  ]);
  x.dispose();
  graph.dispose();
  model.dispose();
};

const train = async (name: BackboneName, size: number, batch: number) => {
  const backbone = buildBackbone(name, { inputShape: [size, size, 3], seed: 0 });
  const head = buildHead(backbone.outputs[0].shape.slice(1) as [number, number, number], 'gap', 17, {
    seed: 0,
  });
  const opt = makeOptimizer({ optimizer: 'rmsprop', lr: 1e-3 });
  const x = tf.randomUniform([batch, size, size, 3], -1, 1);
  const y = tf.oneHot(tf.randomUniform([batch], 0, 17, 'int32'), 17);
  const vars = [...backbone.trainableWeights, ...head.trainableWeights].map((w) => w.read() as tf.Variable);
  const ips = await throughput(batch, quick ? 3 : 10, async () => {
    const loss = opt.minimize(
      () =>
        tf.losses.softmaxCrossEntropy(
          y,
          head.apply(backbone.apply(x, { training: true }), { training: true }) as tf.Tensor,
        ),
      true,
      vars,
    );
    await loss!.data();
    loss!.dispose();
  });
  rows.push([`fine-tune ${name} ${size}x${size} (backbone+gap head)`, `batch ${batch}`, ips.toFixed(2)]);
  tf.dispose([x, y]);
  opt.dispose();
  backbone.dispose();
  head.dispose();
};

const heads = async (shape: [number, number, number], batch: number) => {
  for (const name of HEAD_NAMES) {
    const head = buildHead(shape, name, 17, { seed: 0 });
    const opt = makeOptimizer({ optimizer: 'rmsprop', lr: 1e-4 });
    const x = tf.randomUniform([batch, ...shape], 0, 2);
    const y = tf.oneHot(tf.randomUniform([batch], 0, 17, 'int32'), 17);
    const vars = head.trainableWeights.map((w) => w.read() as tf.Variable);
    const ips = await throughput(batch, quick ? 1 : 3, async () => {
      const loss = opt.minimize(
        () => tf.losses.softmaxCrossEntropy(y, head.apply(x, { training: true }) as tf.Tensor),
        true,
        vars,
      );
      await loss!.data();
      loss!.dispose();
    });
    rows.push([`head ${name} on cached ${shape.join('x')} features`, `batch ${batch}`, ips.toFixed(0)]);
    tf.dispose([x, y]);
    opt.dispose();
    head.dispose();
  }
};

/**
 * Wall time of a frozen comparison on the generated flowers (17 classes × 80 = 1360 images) with packaged
 * MobileNetV2 weights at 224: one head alone in a fresh home (its backbone pass fills the feature cache),
 * then 6 heads × 3 seeds in another fresh home (one backbone pass, then heads on cached features).
 */
const comparison = async () => {
  const ref = 'npm:nsfwjs/mobilenet_v2';
  const facts = packagedWeights(ref)!;
  const config = (head: string, seed: number) =>
    parseRunConfig({
      dataset: 'generated:flowers17',
      backbone: facts.backbone,
      weights: ref,
      trainable: 'frozen',
      head,
      optimizer: 'rmsprop',
      lr: 1e-4,
      decay: 1e-6,
      batchSize: 32,
      epochs: comparisonEpochs,
      seed,
      size: facts.size,
      camSamples: 0,
      shifts: [0],
    });
  const timed = async (runs: { head: string; seed: number }[], dir: string) => {
    const t0 = performance.now();
    let features = 0;
    for (const { head, seed } of runs) {
      const r = await trainRun({
        config: config(head, seed),
        runId: `${head}-s${seed}`,
        runDir: join(dir, 'runs', `${head}-s${seed}`),
        home: join(dir, 'home'),
      });
      features += r.timings.featureSeconds ?? 0;
    }
    return { seconds: (performance.now() - t0) / 1000, features };
  };
  const heads6 = HEAD_NAMES.slice(0, 6);
  const one = await timed([{ head: 'gap', seed: 0 }], join(home, 'one'));
  const all = await timed(
    heads6.flatMap((head) => [0, 1, 2].map((seed) => ({ head, seed }))),
    join(home, 'all'),
  );
  const label = `${comparisonEpochs} epoch${comparisonEpochs === 1 ? '' : 's'}, ${facts.backbone} ${facts.size} frozen, 1360 images`;
  rows.push([
    `1 head (gap) × 1 seed, ${label}`,
    'batch 32',
    `${one.seconds.toFixed(0)} s (features ${one.features.toFixed(0)} s)`,
  ]);
  rows.push([
    `${heads6.length} heads (${heads6.join(',')}) × 3 seeds, ${label}`,
    'batch 32',
    `${all.seconds.toFixed(0)} s (features ${all.features.toFixed(0)} s) = ${(all.seconds / one.seconds).toFixed(1)}× one head`,
  ]);
};

try {
  if (!pretrainedOnly) {
    await feature('smallcnn', 64, 32);
    await feature('smallcnn', 128, 32);
    await feature('nin', 64, 32);
    await feature('mobilenetv2', 224, 8);
    await feature('vgg19', 224, 4);
    await train('smallcnn', 64, 32);
    await train('nin', 64, 32);
    await heads([7, 7, 512], 32);
  }
  // Packaged pretrained weights (nsfwjs 4.4.0): the frozen feature pass of the reference experiment.
  await feature('inceptionv3', 299, 4, undefined, 'npm:nsfwjs/inception_v3');
  await feature('mobilenetv2', 224, 8, undefined, 'npm:nsfwjs/mobilenet_v2');
  if (!noComparison) await comparison();
} finally {
  await rm(home, { recursive: true, force: true });
}

const w = [Math.max(...rows.map((r) => r[0].length)), 10];
console.log(`\n${'workload'.padEnd(w[0])}  ${'batch'.padEnd(w[1])}  img/s (or wall time)`);
for (const r of rows) console.log(`${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2]}`);
console.log(
  `\ncommand: npx tsx bench/models.bench.ts ${process.argv.slice(2).join(' ')}  (backend ${backend.name})`,
);
