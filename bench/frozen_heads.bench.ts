// The product's main CPU path, end to end: a frozen-backbone comparison of every pooling head against one
// head, through the real CLI (`headbench compare`: dataset generation, cached features, head training,
// evaluation, reports). Prints each invocation's wall time and every run's own seconds.
//   npx tsx bench/frozen_heads.bench.ts [--epochs 20] [--images 340] [--size 128] [--seeds 3]
//     [--backbone mobilenetv2] [--heads fc,gap,gmp,avgmax,catavgmax,gem] [--parallel N] [--timeout-s 3600]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWatchdog } from './watchdog.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}
const positive = (name: string, def: string): number => {
  const v = Number(arg(name, def));
  if (!(Number.isInteger(v) && v > 0))
    throw new Error(`--${name} must be a positive integer, got '${arg(name, def)}'`);
  return v;
};
const epochs = positive('epochs', '20');
const images = positive('images', '340');
const size = positive('size', '128');
const seeds = positive('seeds', '3');
const backbone = arg('backbone', 'mobilenetv2');
const heads = arg('heads', 'fc,gap,gmp,avgmax,catavgmax,gem');
const parallel = process.argv.includes('--parallel') ? ['--parallel', String(positive('parallel', '1'))] : [];
const stopWatchdog = startWatchdog(Number(arg('timeout-s', '3600')), 'frozen_heads.bench');

// flowers17 has 17 classes: images per class, rounded up.
const perClass = Math.ceil(images / 17);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'apps/trainer/bin/headbench.js');

interface RunRecord {
  config: { head: string; seed: number };
  dataset: { train: number };
  epochs: { images_per_s: number }[];
  timings: { seconds: number; featureSeconds?: number };
}

/** Seconds in training steps proper (the rest of a run: validation, checkpoints, the test set, reports). */
const stepSeconds = (r: RunRecord) => r.epochs.reduce((sum, e) => sum + r.dataset.train / e.images_per_s, 0);

/** One `headbench compare` in fresh folders; its wall time and its results.json's runs. */
async function compare(label: string, headList: string, seedCount: number) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'headbench-frozen-'));
  const args = [
    cli,
    'compare',
    '--backbone',
    backbone,
    '--trainable',
    'frozen',
    '--heads',
    headList,
    '--seeds',
    String(seedCount),
    '--epochs',
    String(epochs),
    '--size',
    String(size),
    '--data',
    `generated:flowers17?size=${size}&perClass=${perClass}`,
    '--out',
    path.join(work, 'out'),
    '--home',
    path.join(work, 'home'),
    '--quiet',
    ...parallel,
  ];
  const t0 = performance.now();
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (c) => resolve(c ?? 1));
  });
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`${label}: headbench compare exited with code ${code}`);
  const runs = JSON.parse(fs.readFileSync(path.join(work, 'out', 'results.json'), 'utf8')) as RunRecord[];
  fs.rmSync(work, { recursive: true, force: true });
  return { seconds, runs };
}

console.log(
  `command: npx tsx bench/frozen_heads.bench.ts ${process.argv.slice(2).join(' ')}`.trim() +
    `\nmachine: ${os.cpus()[0]?.model ?? '?'} x${os.availableParallelism()}, load avg at start ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}` +
    `\nexperiment: ${backbone} frozen, ${17 * perClass} generated images, size ${size}, ${epochs} epochs`,
);
const one = await compare('one head', heads.split(',')[0], 1);
console.log(
  `one head (${heads.split(',')[0]}, seed 0): ${one.seconds.toFixed(1)} s wall, the run ` +
    `${one.runs[0].timings.seconds.toFixed(1)} s (training steps ${stepSeconds(one.runs[0]).toFixed(1)} s)`,
);
const all = await compare('every head', heads, seeds);
const nHeads = heads.split(',').length;
console.log(
  `${nHeads} heads x ${seeds} seeds: ${all.seconds.toFixed(1)} s wall (${(all.seconds / one.seconds).toFixed(2)}x one head's)`,
);
console.log('| head | runs | seconds per run (each seed) | of which training steps | feature seconds |');
console.log('|---|---:|---|---|---:|');
for (const head of heads.split(',')) {
  const runs = all.runs.filter((r) => r.config.head === head);
  const secs = runs.map((r) => r.timings.seconds.toFixed(1)).join(', ');
  const steps = runs.map((r) => stepSeconds(r).toFixed(1)).join(', ');
  const feat = runs.map((r) => r.timings.featureSeconds ?? 0).reduce((a, b) => a + b, 0);
  console.log(`| ${head} | ${runs.length} | ${secs} | ${steps} | ${feat.toFixed(1)} |`);
}
console.log(
  `load avg at end: ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
stopWatchdog();
