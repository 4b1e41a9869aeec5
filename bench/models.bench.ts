// Throughput of backbones and heads on the default backend (wasm here, tfjs-node on GPU machines).
// Run: npx tsx bench/models.bench.ts [--quick]
import { type BackboneName, buildBackbone, buildHead, HEAD_NAMES, makeOptimizer } from '@headbench/core';
import { fuseForInference, initBackend } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';

const quick = process.argv.includes('--quick');
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
const feature = async (name: BackboneName, size: number, batch: number, alpha?: number) => {
  const model = buildBackbone(name, { inputShape: [size, size, 3], alpha, seed: 0 });
  const x = tf.randomUniform([batch, size, size, 3], -1, 1);
  // As feature extraction runs it: BN folded into the convs, ReLUs fused (packages/engine inference/fuse.ts).
  const graph = fuseForInference(model);
  const ips = await throughput(batch, quick ? 2 : 6, async () => {
    const y = graph.predict(x) as tf.Tensor;
    await y.data();
    y.dispose();
  });
  rows.push([
    `features ${name}${alpha ? ` α${alpha}` : ''} ${size}x${size}`,
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

await feature('smallcnn', 64, 32);
await feature('smallcnn', 128, 32);
await feature('nin', 64, 32);
await feature('mobilenetv2', 224, 8);
await feature('vgg19', 224, 4);
await train('smallcnn', 64, 32);
await train('nin', 64, 32);
await heads([7, 7, 512], 32);

const w = [Math.max(...rows.map((r) => r[0].length)), 10];
console.log(`\n${'workload'.padEnd(w[0])}  ${'batch'.padEnd(w[1])}  img/s`);
for (const r of rows) console.log(`${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2]}`);
console.log(`\ncommand: npx tsx bench/models.bench.ts${quick ? ' --quick' : ''}  (backend ${backend.name})`);
