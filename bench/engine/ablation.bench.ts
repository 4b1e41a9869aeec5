/**
 * What each training-path piece of the engine is worth: the same training step with one piece switched
 * off at a time, alternating round after round in one process, medians per variant.
 *   npx tsx bench/engine/ablation.bench.ts [--rounds 5] [--steps 4]
 *   HEADBENCH_WASM_THREADS=1 npx tsx bench/engine/ablation.bench.ts   # a trainer slot's one-thread build
 * Pieces: the conv pool working in tfjs's heap (off: its own memory, operands copied in and out), the
 * one-pass ReLU gradient (off: tfjs's step + cast + mul), linear convs trained as conv2d + bias add (off:
 * fused conv, whose gradient computes every input gradient). Workloads: smallcnn 64 b32 from scratch, and
 * MobileNetV2 128 b16 with its last 2 blocks trainable.
 */
import os from 'node:os';
import { buildBackbone, setTrainable } from '@headbench/core';
import {
  configureConvPool,
  initBackend,
  tfjsHeapOf,
  useOnePassReluGradients,
  usePlainConvTraining,
} from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { smallCnn, trainStep } from '../../packages/engine/test/models.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const rounds = arg('rounds', 5);
const steps = arg('steps', 4);

const info = await initBackend('wasm');
const heap = tfjsHeapOf(tf.findBackend('wasm'));

interface Variant {
  name: string;
  inPlace: boolean;
  reluOnePass: boolean;
  plainConv: boolean;
}
const ALL: Variant = { name: 'all on', inPlace: true, reluOnePass: true, plainConv: true };
const VARIANTS: Variant[] = [
  ALL,
  { ...ALL, name: 'pool copies operands', inPlace: false },
  { ...ALL, name: "tfjs's ReLU gradient", reluOnePass: false },
  { ...ALL, name: 'fused conv training', plainConv: false },
  { name: 'all off', inPlace: false, reluOnePass: false, plainConv: false },
];

function apply(v: Variant) {
  configureConvPool(info.threads, v.inPlace ? heap : null);
  useOnePassReluGradients(v.reluOnePass);
  usePlainConvTraining(v.plainConv);
}

function workload(name: string): { model: tfl.LayersModel; x: tf.Tensor; y: tf.Tensor; batch: number } {
  const classes = 10;
  let model: tfl.LayersModel;
  let size: number;
  let batch: number;
  if (name === 'smallcnn') {
    [size, batch] = [64, 32];
    model = smallCnn(size, classes);
  } else {
    [size, batch] = [128, 16];
    const base = buildBackbone('mobilenetv2', { inputShape: [size, size, 3], seed: 1 });
    setTrainable(base, 'mobilenetv2', 2);
    const gap = tfl.layers.globalAveragePooling2d({}).apply(base.outputs[0]);
    const out = tfl.layers.dense({ units: classes, activation: 'softmax' }).apply(gap) as tfl.SymbolicTensor;
    model = tfl.model({ inputs: base.inputs, outputs: out });
  }
  const x = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 3);
  const y = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: batch }, (_, i) => i % classes),
      'int32',
    ),
    classes,
  );
  return { model, x, y, batch };
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];

console.log(`machine: ${os.cpus()[0]?.model} x${os.cpus().length}, node ${process.version}`);
console.log(
  `backend: wasm, ${info.threads} thread(s); ${rounds} rounds of ${steps} steps per variant, alternating`,
);
for (const name of ['smallcnn 64 b32', 'mobilenetv2 128 b16, last 2 blocks']) {
  const { model, x, y, batch } = workload(name.split(' ')[0]);
  const opt = tf.train.sgd(1e-3);
  const ms = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const v of VARIANTS) {
      apply(v);
      trainStep(model, opt, x, y); // warm-up: a new pool's workers, first-call setup
      const t = performance.now();
      for (let i = 0; i < steps; i++) trainStep(model, opt, x, y);
      ms.get(v.name)!.push((performance.now() - t) / steps);
    }
  }
  apply(ALL);
  const base = median(ms.get(ALL.name)!);
  console.log(`\n${name}`);
  console.log('| variant | step ms | img/s | all-on speedup over it |');
  console.log('|---|---:|---:|---:|');
  for (const v of VARIANTS) {
    const m = median(ms.get(v.name)!);
    console.log(
      `| ${v.name} | ${m.toFixed(1)} | ${((batch * 1000) / m).toFixed(1)} | ${(m / base).toFixed(2)}x |`,
    );
  }
  tf.dispose([x, y]);
  model.dispose();
  opt.dispose();
}
console.log(`\ncommand: npx tsx bench/engine/ablation.bench.ts --rounds ${rounds} --steps ${steps}`);
process.exit(0);
