/**
 * headbench (tfjs wasm + @headbench/engine) vs PyTorch on the same models, shapes, batch and threads.
 *   npx tsx bench/engine/compare.bench.ts [--rounds 3] [--only smallcnn,vgg16-128] [--python /usr/bin/python3]
 *     [--unfused] [--timeout-s 3600] [--allow-reference-blas]
 * PyTorch runs as a persistent child (bench/engine/torch_bench.py, Debian's python3-torch) so the two
 * sides alternate workload by workload, round after round; the table reports medians per side. The
 * machine is shared: loads from other processes move single figures by 2x, medians less.
 * Threads: the engine's (HEADBENCH_WASM_THREADS, default every core) for both sides; the
 * "data-parallel" rows train with createDataParallelTrainer (that many single-threaded replicas).
 * A fair anchor needs an optimized BLAS under PyTorch's Dense layers: Debian's torch (BLAS_INFO=generic)
 * calls whatever libblas.so.3 is installed, the reference BLAS unless libopenblas0-pthread is. The bench
 * prints which one PyTorch has loaded and refuses the reference one (--allow-reference-blas: warn only).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { buildBackbone, buildHead } from '@headbench/core';
import { convPool, createDataParallelTrainer, fuseForInference, initBackend } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
// The engine tests' training step (softmax cross-entropy, one optimizer.minimize).
import { trainStep } from '../../packages/engine/test/models.js';
import { startWatchdog } from '../watchdog.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}
const rounds = Number(arg('rounds', '3'));
const python = arg('python', '/usr/bin/python3');
const unfused = process.argv.includes('--unfused');
const allowReferenceBlas = process.argv.includes('--allow-reference-blas');
const stopWatchdog = startWatchdog(Number(arg('timeout-s', '3600')), 'compare.bench');
const only = arg('only', '')
  .split(',')
  .filter((s) => s !== '');

interface Spec {
  kind: 'train' | 'infer';
  /** headbench side: createDataParallelTrainer (one single-threaded replica per thread) instead of threads. */
  dataParallel?: boolean;
  model: 'smallcnn' | 'nin' | 'dense_head' | 'gem_head' | 'vgg16' | 'vgg19' | 'mobilenetv2';
  size: number;
  /** Head workloads on cached features [size, size, channels] (a backbone's, post-ReLU), `classes` out. */
  channels?: number;
  classes?: number;
  batch: number;
  reps: number;
}
const WORKLOADS: Record<string, Spec> = {
  'train smallcnn 64 b32': { kind: 'train', model: 'smallcnn', size: 64, batch: 32, reps: 3 },
  'train smallcnn 64 b32, data-parallel': {
    kind: 'train',
    model: 'smallcnn',
    size: 64,
    batch: 32,
    reps: 3,
    dataParallel: true,
  },
  'train nin 64 b32': { kind: 'train', model: 'nin', size: 64, batch: 32, reps: 2 },
  'train nin 64 b32, data-parallel': {
    kind: 'train',
    model: 'nin',
    size: 64,
    batch: 32,
    reps: 2,
    dataParallel: true,
  },
  'train dense-head 7x7x512 b32': { kind: 'train', model: 'dense_head', size: 7, batch: 32, reps: 5 },
  // The frozen MobileNetV2 128 comparison's GeM head: its features are 4x4x1280.
  'train gem-head 4x4x1280 b32': {
    kind: 'train',
    model: 'gem_head',
    size: 4,
    batch: 32,
    reps: 10,
    channels: 1280,
    classes: 17,
  },
  'infer vgg16 128 b8': { kind: 'infer', model: 'vgg16', size: 128, batch: 8, reps: 2 },
  'infer vgg16 224 b8': { kind: 'infer', model: 'vgg16', size: 224, batch: 8, reps: 1 },
  'infer vgg19 128 b8': { kind: 'infer', model: 'vgg19', size: 128, batch: 8, reps: 2 },
  'infer vgg19 224 b8': { kind: 'infer', model: 'vgg19', size: 224, batch: 8, reps: 1 },
  'infer mobilenetv2 128 b8': { kind: 'infer', model: 'mobilenetv2', size: 128, batch: 8, reps: 3 },
  'infer mobilenetv2 224 b8': { kind: 'infer', model: 'mobilenetv2', size: 224, batch: 8, reps: 2 },
};
const names = Object.keys(WORKLOADS).filter((n) => only.length === 0 || only.some((o) => n.includes(o)));

/** Backbone + GAP + Dense(10) softmax, as the trainer's GAP head builds it. */
function classifier(base: tfl.LayersModel): tfl.LayersModel {
  const gap = tfl.layers.globalAveragePooling2d({}).apply(base.outputs[0]);
  const out = tfl.layers.dense({ units: 10, activation: 'softmax' }).apply(gap) as tfl.SymbolicTensor;
  return tfl.model({ inputs: base.inputs, outputs: out });
}

function denseHead(): tfl.LayersModel {
  const m = tfl.sequential();
  m.add(tfl.layers.flatten({ inputShape: [7, 7, 512] }));
  m.add(tfl.layers.dense({ units: 512, activation: 'relu' }));
  m.add(tfl.layers.dense({ units: 10, activation: 'softmax' }));
  return m;
}

/** Builds the model and input once; returns one timed step (a training step or a forward pass). */
async function makeStep(spec: Spec): Promise<{ step: () => unknown; dispose: () => unknown }> {
  const model =
    spec.model === 'dense_head'
      ? denseHead()
      : spec.model === 'gem_head'
        ? buildHead([spec.size, spec.size, spec.channels!], 'gem', spec.classes!, { seed: 1 })
        : spec.kind === 'train'
          ? classifier(buildBackbone(spec.model, { inputShape: [spec.size, spec.size, 3], seed: 1 }))
          : buildBackbone(spec.model, { inputShape: [spec.size, spec.size, 3], seed: 1 });
  const shape =
    spec.model === 'dense_head'
      ? [spec.batch, 7, 7, 512]
      : spec.model === 'gem_head'
        ? [spec.batch, spec.size, spec.size, spec.channels!]
        : [spec.batch, spec.size, spec.size, 3];
  // Head inputs are post-ReLU features: non-negative (as torch_bench.py makes them).
  const x = spec.model === 'gem_head' ? tf.randomUniform(shape) : tf.randomNormal(shape);
  if (spec.kind === 'infer') {
    // Inference runs the graph core's feature extraction runs: BN folded into convs, ReLU/ReLU6 fused
    // (--unfused: tfjs-layers' own predict, layer by layer).
    const graph = unfused ? null : fuseForInference(model);
    const forward = (t: tf.Tensor) => (graph ? graph.predict(t) : model.predict(t)) as tf.Tensor;
    return {
      // A scalar out of the tidy: returning the whole typed array would make tidy walk every element.
      step: () => tf.tidy(() => tf.sum(forward(x)).dataSync()[0]),
      dispose: () => {
        x.dispose();
        graph?.dispose();
        model.dispose();
      },
    };
  }
  const classes = spec.classes ?? 10;
  const y = tf.oneHot(tf.randomUniform([spec.batch], 0, classes, 'int32'), classes);
  if (spec.dataParallel) {
    const dp = await createDataParallelTrainer(model, {
      optimizer: { name: 'adam', learningRate: 1e-3 },
      imports: ['@headbench/core'], // its custom layers (NIN's dropout)
    });
    return {
      step: () => dp.step(x, y),
      dispose: async () => {
        await dp.dispose();
        tf.dispose([x, y]);
        model.dispose();
      },
    };
  }
  const opt = tf.train.adam(1e-3);
  return {
    step: () => trainStep(model, opt, x, y),
    dispose: () => {
      tf.dispose([x, y]);
      model.dispose();
      opt.dispose();
    },
  };
}

const steps = new Map<string, Awaited<ReturnType<typeof makeStep>>>();
async function headbenchRun(name: string): Promise<number> {
  const spec = WORKLOADS[name];
  let s = steps.get(name);
  if (s === undefined) {
    s = await makeStep(spec);
    await s.step(); // warm-up: operator creation, optimizer slots
    steps.set(name, s);
  }
  const t0 = performance.now();
  for (let i = 0; i < spec.reps; i++) await s.step();
  return (spec.batch * spec.reps * 1000) / (performance.now() - t0);
}

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const info = await initBackend('wasm');
const threads = info.threads;
const here = path.dirname(fileURLToPath(import.meta.url));
// The same thread count everywhere on PyTorch's side: its OpenMP pool and OpenBLAS's own threads.
const torch = spawn(python, [path.join(here, 'torch_bench.py'), String(threads)], {
  stdio: ['pipe', 'pipe', 'inherit'],
  env: { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) },
});
const lines = readline.createInterface({ input: torch.stdout });
const iter = lines[Symbol.asyncIterator]();
const readReply = async (): Promise<Record<string, unknown>> => {
  const r = await iter.next();
  if (r.done) throw new Error(`torch_bench.py exited (code ${torch.exitCode}); is python3-torch installed?`);
  return JSON.parse(r.value);
};
const torchInfo = (await readReply()) as {
  torch: string;
  threads: number;
  blas_info: string;
  blas_libs: string[];
  blas_optimized: boolean;
  blas_probe_ms: number;
};
const blasLine =
  `BLAS_INFO=${torchInfo.blas_info}, loaded: ${torchInfo.blas_libs.join(', ') || 'none found'}; ` +
  `32x20480x512 product ${torchInfo.blas_probe_ms.toFixed(1)} ms`;
if (!torchInfo.blas_optimized) {
  const warning =
    `PyTorch is using the REFERENCE BLAS (${blasLine}): its Dense layers run 10-30x slower than with an ` +
    'optimized one, so every ratio against it flatters headbench. Install one (Debian: apt-get install -y ' +
    'libopenblas0-pthread) and rerun';
  if (!allowReferenceBlas) {
    torch.kill();
    throw new Error(`${warning}, or pass --allow-reference-blas to measure anyway.`);
  }
  console.warn(`\n!!! WARNING: ${warning}. (--allow-reference-blas) !!!\n`);
}
const torchRun = async (name: string): Promise<number> => {
  const { reps, ...spec } = WORKLOADS[name];
  torch.stdin.write(`${JSON.stringify({ spec, reps })}\n`);
  return (await readReply()).img_per_s as number;
};

console.log(`command: npx tsx bench/engine/compare.bench.ts ${process.argv.slice(2).join(' ')}`.trim());
console.log(
  `machine: ${os.cpus()[0]?.model ?? '?'} x${os.availableParallelism()}, node ${process.version}, ` +
    `load avg at start ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
);
console.log(
  `headbench: tfjs ${tf.version_core} ${info.name}, ${threads} threads; inference ${unfused ? 'layer by layer (--unfused)' : 'fused graph (BN folded, ReLU fused)'}`,
);
console.log(
  `engine kernels: ${convPool().fma ? 'relaxed-SIMD fused multiply-add' : 'plain SIMD (HEADBENCH_WASM_FMA=0 or no relaxed SIMD)'}`,
);
console.log(`pytorch: ${torchInfo.torch}, ${torchInfo.threads} threads`);
console.log(
  `pytorch BLAS: ${torchInfo.blas_optimized ? 'optimized' : 'REFERENCE (ratios flattered)'}; ${blasLine}`,
);

function printTable(done: number): void {
  console.log(
    `\nmedians over ${done} alternating round(s) (${threads} threads each side; PyTorch BLAS ` +
      `${torchInfo.blas_optimized ? (torchInfo.blas_libs.find((l) => /openblas|mkl|blis/i.test(l)) ?? torchInfo.blas_info) : 'REFERENCE'})`,
  );
  console.log('| workload | headbench img/s | PyTorch img/s | ratio |');
  console.log('|---|---:|---:|---:|');
  for (const [name, { hb, pt }] of results) {
    const h = median(hb);
    const p = median(pt);
    console.log(`| ${name} | ${h.toFixed(2)} | ${p.toFixed(2)} | ${(h / p).toFixed(2)} |`);
  }
}

const results = new Map<string, { hb: number[]; pt: number[] }>(names.map((n) => [n, { hb: [], pt: [] }]));
for (let r = 0; r < rounds; r++) {
  for (const name of names) {
    const res = results.get(name)!;
    // Alternate which side goes first so neither always follows the other's cache / thermal state.
    if (r % 2 === 0) {
      res.hb.push(await headbenchRun(name));
      res.pt.push(await torchRun(name));
    } else {
      res.pt.push(await torchRun(name));
      res.hb.push(await headbenchRun(name));
    }
    console.log(
      `round ${r + 1} ${name}: headbench ${res.hb.at(-1)!.toFixed(2)} img/s, pytorch ${res.pt.at(-1)!.toFixed(2)} img/s`,
    );
  }
  // After every round but the last: a long run cut short still leaves its table.
  if (r + 1 < rounds) printTable(r + 1);
}
torch.stdin.end();
for (const s of steps.values()) await s.dispose();

printTable(rounds);
console.log(
  `load avg at end: ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
stopWatchdog();
