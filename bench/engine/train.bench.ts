/**
 * Training / inference throughput of the wasm backend with the headbench kernels.
 *   npx tsx bench/engine/train.bench.ts [--steps 5] [--stock-steps 2] [--batch 32] [--size 64] [--no-stock]
 * Prints img/s for: smallcnn training at 64x64 batch 32 with our kernels, the same with the stock wasm
 * kernels where stock has one (every name in REPLACED_KERNELS: Winograd Conv2D/FusedConv2D, Conv2DBackpropInput,
 * BatchMatMul, Tile, Sum, Mean, MaxPoolGrad, Identity; the added kernels and the fused BatchNorm stay on), and
 * VGG16-conv-base inference at 128x128.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, REPLACED_KERNELS, useKernelReplacements } from '../../packages/engine/src/index.js';
// The same smallcnn the engine's gradient tests use.
import { smallCnn, trainStep } from '../../packages/engine/test/models.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const steps = arg('steps', 5);
const stockSteps = arg('stock-steps', 2);
const batch = arg('batch', 32);
const size = arg('size', 64);
const vggSize = arg('vgg-size', 128);
const vggBatch = arg('vgg-batch', 8);
const vggReps = arg('vgg-reps', 3);
const runStock = !process.argv.includes('--no-stock');

function vgg16Base(): tfl.LayersModel {
  const m = tfl.sequential();
  const blocks = [
    [64, 64],
    [128, 128],
    [256, 256, 256],
    [512, 512, 512],
    [512, 512, 512],
  ];
  let first = true;
  for (const block of blocks) {
    for (const f of block) {
      m.add(
        tfl.layers.conv2d({
          filters: f,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          ...(first ? { inputShape: [vggSize, vggSize, 3] } : {}),
        }),
      );
      first = false;
    }
    m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  }
  return m;
}

function trainImgPerSec(n: number): { imgPerSec: number; stepMs: number; loss: number } {
  const model = smallCnn(size, 10);
  const opt = tf.train.adam(1e-3);
  const x = tf.randomNormal([batch, size, size, 3]);
  const y = tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32'), 10);
  const step = () => trainStep(model, opt, x, y);
  step(); // warm-up: operator creation, optimizer slots
  const t0 = performance.now();
  let loss = 0;
  for (let i = 0; i < n; i++) loss = step();
  const stepMs = (performance.now() - t0) / n;
  tf.dispose([x, y]);
  model.dispose();
  opt.dispose();
  return { imgPerSec: (batch * 1000) / stepMs, stepMs, loss };
}

function vggImgPerSec(): { imgPerSec: number; batchMs: number } {
  const model = vgg16Base();
  const x = tf.randomNormal([vggBatch, vggSize, vggSize, 3]);
  const run = () => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
  run();
  const t0 = performance.now();
  for (let i = 0; i < vggReps; i++) run();
  const batchMs = (performance.now() - t0) / vggReps;
  x.dispose();
  model.dispose();
  return { imgPerSec: (vggBatch * 1000) / batchMs, batchMs };
}

const info = await initBackend('wasm');
console.log(`command: npx tsx bench/engine/train.bench.ts ${process.argv.slice(2).join(' ')}`.trim());
console.log(
  `machine: ${os.cpus()[0]?.model ?? '?'} x${os.availableParallelism()}, node ${process.version}, ` +
    `load avg ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
);
console.log(`backend: ${JSON.stringify(info)}`);

const ours = trainImgPerSec(steps);
console.log(
  `smallcnn train ${size}x${size} batch ${batch}, headbench kernels: ${ours.imgPerSec.toFixed(2)} img/s ` +
    `(${ours.stepMs.toFixed(0)} ms/step, ${steps} steps, loss ${ours.loss.toFixed(3)})`,
);
if (runStock) {
  useKernelReplacements(false);
  const stock = trainImgPerSec(stockSteps);
  useKernelReplacements(true);
  console.log(
    `smallcnn train ${size}x${size} batch ${batch}, stock wasm for ${REPLACED_KERNELS.join('/')}: ` +
      `${stock.imgPerSec.toFixed(2)} img/s (${stock.stepMs.toFixed(0)} ms/step, ${stockSteps} steps)`,
  );
  console.log(`speed-up from replacements: ${(ours.imgPerSec / stock.imgPerSec).toFixed(1)}x`);
}
const vgg = vggImgPerSec();
console.log(
  `vgg16 conv base inference ${vggSize}x${vggSize} batch ${vggBatch}: ${vgg.imgPerSec.toFixed(2)} img/s ` +
    `(${vgg.batchMs.toFixed(0)} ms/batch, ${vggReps} reps)`,
);
