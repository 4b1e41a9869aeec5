import { mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import {
  BACKBONE_NAMES,
  BACKEND_NAMES,
  type BackboneName,
  type BackendName,
  HEAD_NAMES,
  HeadbenchInputError,
  type HeadName,
  OPTIMIZER_NAMES,
  type OptimizerName,
  openDataset,
  type RunConfig,
  type RunResult,
  runConfigHash,
  type Trainable,
  validateRunConfig,
  writeReport,
} from '@headbench/core';
import { Progress } from './progress.js';
import type { ThreadJob, ThreadMessage } from './run-thread.js';

/** Every flag of `headbench compare`, with its default and what it means (also the help text). */
const FLAGS = {
  data: {
    type: 'string',
    default: 'generated:flowers17',
    help: 'dataset URI: folder | idx:<images>,<labels> | generated:flowers17[?seed=&size=&perClass=]',
  },
  classes: { type: 'string', help: 'comma-separated class order (default: sorted folder names)' },
  split: {
    type: 'string',
    default: '7:1',
    help: 'train:val:test (6:1:1) or train:test (7:1) with validation carved from train by --val-fraction; datasets with train/ and test/ folders keep theirs',
  },
  'val-fraction': {
    type: 'string',
    help: 'share of the training part held out for validation with a train:test split (default 0.125)',
  },
  'split-seed': {
    type: 'string',
    default: 'seed',
    help: "seed of the split: an integer (one split for every run) or 'seed' (repeated splits: each seed its own)",
  },
  backbone: {
    type: 'string',
    default: 'smallcnn',
    help: `comma-separated backbones: ${BACKBONE_NAMES.join(', ')}`,
  },
  alpha: { type: 'string', help: 'MobileNetV2 width multiplier (0.35–1.4)' },
  weights: {
    type: 'string',
    default: 'none',
    help: 'none | a tfjs layers model path or URL | run:<id> (a model from --out/runs)',
  },
  trainable: { type: 'string', default: 'all', help: 'frozen | all | N (the last N blocks)' },
  heads: { type: 'string', default: 'fc,gap,gmp', help: `comma-separated heads: ${HEAD_NAMES.join(', ')}` },
  hidden: { type: 'string', default: '512', help: 'hidden units of the fc head' },
  dropout: { type: 'string', default: '0', help: 'dropout before the classifier' },
  epochs: { type: 'string', default: '10', help: 'epochs per run (the reference experiment: 50)' },
  batch: { type: 'string', default: '32', help: 'batch size' },
  optimizer: { type: 'string', default: 'rmsprop', help: `optimizer: ${OPTIMIZER_NAMES.join(', ')}` },
  lr: {
    type: 'string',
    default: '1e-3',
    help: 'learning rate (Keras RMSprop default; the reference fine-tuning used 1e-4)',
  },
  decay: { type: 'string', default: '1e-6', help: 'Keras-style time decay: lr / (1 + decay · iterations)' },
  momentum: { type: 'string', default: '0.9', help: 'SGD momentum' },
  seeds: { type: 'string', default: '3', help: 'number of seeds (0..N-1), or a comma-separated list' },
  size: { type: 'string', default: '224', help: 'input size in pixels (square)' },
  augment: { type: 'string', help: 'augmentation: flip,shift=0.1,rotation=10' },
  'early-stopping': { type: 'string', help: 'val_loss:PATIENCE or val_accuracy:PATIENCE' },
  'cam-samples': { type: 'string', default: '8', help: 'test images that get a class activation map' },
  'no-feature-cache': {
    type: 'boolean',
    help: 'train frozen backbones without the cached-features fast path',
  },
  backend: { type: 'string', default: 'auto', help: `TensorFlow.js backend: ${BACKEND_NAMES.join(', ')}` },
  out: {
    type: 'string',
    default: 'results',
    help: 'output folder (results.json, metrics.csv, figures/, report.md, runs/)',
  },
  home: {
    type: 'string',
    default: '.headbench',
    help: 'state folder: generated datasets and the feature cache',
  },
  parallel: { type: 'string', help: 'runs trained at once, one thread each (default: one per core)' },
  quiet: { type: 'boolean', help: 'no progress bar' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} as const;

export const COMPARE_HELP = `headbench compare — train every backbone × head × seed and write the report

Usage: headbench compare [flags]

${Object.entries(FLAGS)
  .map(([k, f]) => `  --${k.padEnd(18)} ${f.help}${'default' in f ? ` (default ${f.default})` : ''}`)
  .join('\n')}

Example (the reference experiment):
  headbench compare --data path/to/flowers17 --backbone vgg19,inceptionv3 --weights imagenet/vgg19 \\
    --trainable all --heads fc,gap,gmp --epochs 50 --batch 32 --optimizer rmsprop --lr 1e-4 --decay 1e-6 \\
    --seeds 3 --size 224 --out results/`;

export interface ComparePlan {
  runs: Array<{ id: string; config: RunConfig }>;
  out: string;
  home: string;
  backend: BackendName;
  featureCache: boolean;
  quiet: boolean;
  parallel: number;
}

/** Parse and validate flags; every problem names the flag and its valid values. */
export function parseCompareArgs(argv: string[]): ComparePlan | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: FLAGS as never,
      strict: true,
      allowPositionals: false,
    }) as {
      values: Record<string, string | boolean | undefined>;
    });
  } catch (err) {
    const m = /'(-[^']+)'/.exec((err as Error).message);
    throw new HeadbenchInputError(
      `compare: ${m ? `unknown or malformed flag ${m[1]}` : (err as Error).message} (valid flags: ${Object.keys(
        FLAGS,
      )
        .map((k) => `--${k}`)
        .join(', ')})`,
    );
  }
  if (values.help) return 'help';
  const str = (k: keyof typeof FLAGS) => values[k] as string | undefined;
  const list = (k: keyof typeof FLAGS) =>
    (str(k) ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const number = (k: keyof typeof FLAGS, opts: { integer?: boolean; min?: number; max?: number } = {}) => {
    const raw = str(k);
    const v = Number(raw);
    if (
      raw === undefined ||
      raw.trim() === '' ||
      !Number.isFinite(v) ||
      (opts.integer && !Number.isInteger(v))
    ) {
      throw new HeadbenchInputError(`--${k}: '${raw}' is not ${opts.integer ? 'an integer' : 'a number'}`);
    }
    if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
      throw new HeadbenchInputError(`--${k}: ${v} is out of range [${opts.min ?? '-∞'}, ${opts.max ?? '∞'}]`);
    }
    return v;
  };
  const oneOf = <T extends string>(k: keyof typeof FLAGS, valid: readonly T[], v = str(k)): T => {
    if (!v || !valid.includes(v as T))
      throw new HeadbenchInputError(`--${k}: unknown value '${v}' (valid: ${valid.join(', ')})`);
    return v as T;
  };
  const backbones = list('backbone').map((b) => oneOf<BackboneName>('backbone', BACKBONE_NAMES, b));
  const heads = list('heads').map((h) => oneOf<HeadName>('heads', HEAD_NAMES, h));
  if (!backbones.length)
    throw new HeadbenchInputError(`--backbone: give at least one of ${BACKBONE_NAMES.join(', ')}`);
  if (!heads.length) throw new HeadbenchInputError(`--heads: give at least one of ${HEAD_NAMES.join(', ')}`);
  const seedList = str('seeds')!.includes(',')
    ? list('seeds').map((s) => {
        const v = Number(s);
        if (!Number.isInteger(v) || v < 0)
          throw new HeadbenchInputError(`--seeds: '${s}' is not a non-negative integer`);
        return v;
      })
    : Array.from({ length: number('seeds', { integer: true, min: 1, max: 1000 }) }, (_, i) => i);
  const trainableRaw = str('trainable')!;
  let trainable: Trainable;
  if (trainableRaw === 'frozen' || trainableRaw === 'all') trainable = trainableRaw;
  else if (/^\d+$/.test(trainableRaw) && Number(trainableRaw) >= 1) trainable = Number(trainableRaw);
  else
    throw new HeadbenchInputError(
      `--trainable: unknown value '${trainableRaw}' (valid: frozen, all, or a number of last blocks ≥ 1)`,
    );

  const base = {
    dataset: str('data')!,
    classes: str('classes') ? list('classes') : undefined,
    split: str('split'),
    valFraction: str('val-fraction') !== undefined ? number('val-fraction', { min: 0, max: 1 }) : undefined,
    splitSeed:
      str('split-seed') === 'seed' ? ('seed' as const) : number('split-seed', { integer: true, min: 0 }),
    alpha: str('alpha') !== undefined ? number('alpha', { min: 0.35, max: 1.4 }) : undefined,
    weights: str('weights')!,
    trainable,
    hidden: number('hidden', { integer: true, min: 1 }),
    dropout: number('dropout', { min: 0, max: 0.95 }),
    optimizer: oneOf<OptimizerName>('optimizer', OPTIMIZER_NAMES),
    lr: number('lr', { min: 0 }),
    decay: number('decay', { min: 0 }),
    momentum: number('momentum', { min: 0, max: 1 }),
    batchSize: number('batch', { integer: true, min: 1 }),
    epochs: number('epochs', { integer: true, min: 1 }),
    size: number('size', { integer: true, min: 16 }),
    augment: str('augment') ? parseAugment(str('augment')!) : undefined,
    earlyStopping: str('early-stopping') ? parseEarlyStopping(str('early-stopping')!) : undefined,
    camSamples: number('cam-samples', { integer: true, min: 0 }),
  };
  const runs: ComparePlan['runs'] = [];
  for (const backbone of backbones) {
    for (const head of heads) {
      for (const seed of seedList) {
        const config = validateRunConfig(
          Object.fromEntries(
            Object.entries({ ...base, backbone, head, seed }).filter(([, v]) => v !== undefined),
          ) as unknown as RunConfig,
        );
        runs.push({ id: `${backbone}-${head}-s${seed}-${runConfigHash(config).slice(0, 6)}`, config });
      }
    }
  }
  return {
    runs,
    out: resolve(str('out')!),
    home: resolve(str('home')!),
    backend: oneOf<BackendName>('backend', BACKEND_NAMES),
    featureCache: !values['no-feature-cache'],
    quiet: !!values.quiet,
    parallel:
      str('parallel') !== undefined
        ? number('parallel', { integer: true, min: 1, max: 64 })
        : availableParallelism(),
  };
}

function parseAugment(spec: string): NonNullable<RunConfig['augment']> {
  const out: NonNullable<RunConfig['augment']> = {};
  for (const part of spec.split(',')) {
    const [k, v] = part.split('=');
    if (k === 'flip' && v === undefined) out.horizontalFlip = true;
    else if ((k === 'shift' || k === 'rotation') && v !== undefined && Number.isFinite(Number(v)))
      out[k] = Number(v);
    else
      throw new HeadbenchInputError(
        `--augment: cannot read '${part}' (valid: flip, shift=<fraction>, rotation=<degrees>)`,
      );
  }
  return out;
}

function parseEarlyStopping(spec: string): NonNullable<RunConfig['earlyStopping']> {
  const [monitor, patience] = spec.split(':');
  if ((monitor !== 'val_loss' && monitor !== 'val_accuracy') || !/^\d+$/.test(patience ?? '')) {
    throw new HeadbenchInputError(
      `--early-stopping: '${spec}' must be val_loss:PATIENCE or val_accuracy:PATIENCE`,
    );
  }
  return { monitor, patience: Number(patience) };
}

/**
 * Run the plan: finished runs (result.json with the same config) are kept, interrupted ones resume from
 * their checkpoint. Runs train in worker threads, `parallel` at a time; each thread has its own wasm
 * instance, so two runs use two cores. A run whose weights are `run:<id>` of this plan waits for it.
 */
export async function runCompare(plan: ComparePlan): Promise<RunResult[]> {
  await mkdir(plan.out, { recursive: true });
  // Open (and generate) each dataset once up front: bad input fails before any training, and
  // parallel runs never race to generate the same files.
  for (const uri of new Set(plan.runs.map((r) => r.config.dataset))) {
    const classes = plan.runs.find((r) => r.config.dataset === uri)?.config.classes;
    await openDataset(uri, { cacheDir: join(plan.home, 'datasets'), classes });
  }
  const progress = new Progress(plan.runs.length, plan.quiet);
  const lanesCount = Math.max(1, Math.min(plan.parallel, plan.runs.length));
  const threadsPerRun = Math.max(1, Math.floor(availableParallelism() / lanesCount));
  const results = new Map<string, RunResult>();
  const finished = new Map<string, Promise<void>>();
  const pending = [...plan.runs.entries()];
  let inputError: HeadbenchInputError | undefined;

  const runOne = async (index: number, run: ComparePlan['runs'][number]): Promise<void> => {
    const runDir = join(plan.out, 'runs', run.id);
    const done = await readFile(join(runDir, 'result.json'), 'utf8')
      .then((s) => JSON.parse(s) as RunResult)
      .catch(() => undefined);
    if (done?.status === 'succeeded' && runConfigHash(done.config) === runConfigHash(run.config)) {
      progress.note(`[${index + 1}/${plan.runs.length}] ${run.id}: already done, kept`);
      results.set(run.id, done);
      return;
    }
    const dependency = run.config.weights.startsWith('run:')
      ? finished.get(run.config.weights.slice(4))
      : undefined;
    await dependency;
    progress.startRun(index, run.id, run.config.epochs);
    const job: ThreadJob = {
      config: run.config,
      runId: run.id,
      runDir,
      outDir: plan.out,
      home: plan.home,
      backend: plan.backend,
      featureCache: plan.featureCache,
      runsDir: join(plan.out, 'runs'),
    };
    const outcome = await new Promise<ThreadMessage>((resolveRun) => {
      const worker = new Worker(new URL('../bin/run-thread.js', import.meta.url), {
        workerData: job,
        // Share the cores between the runs in flight rather than giving each run's wasm pool all of them.
        env: {
          ...process.env,
          HEADBENCH_WASM_THREADS: process.env.HEADBENCH_WASM_THREADS ?? String(threadsPerRun),
        },
      });
      let last: ThreadMessage | undefined;
      worker.on('message', (m: ThreadMessage) => {
        if (m.type === 'batch') progress.batch(run.id, m.metrics);
        else if (m.type === 'epoch') progress.epoch(run.id, m.metrics);
        else if (m.type === 'log') progress.log(run.id, m.message);
        else {
          // The run is over: don't wait for the thread to drain (a backend's helper threads can keep it alive).
          last = m;
          void worker.terminate();
        }
      });
      worker.on('error', (err) => {
        last ??= { type: 'error', message: err.message, input: false };
      });
      worker.on('exit', (code) =>
        resolveRun(
          last ?? { type: 'error', message: `training thread exited with code ${code}`, input: false },
        ),
      );
    });
    if (outcome.type === 'done') {
      progress.endRun(outcome.result);
      results.set(run.id, outcome.result);
      return;
    }
    if (outcome.type === 'error' && outcome.input) inputError ??= new HeadbenchInputError(outcome.message);
    const message = outcome.type === 'error' ? outcome.message : 'unknown failure';
    progress.failRun(run.id, message);
    results.set(run.id, {
      id: run.id,
      config: run.config,
      backend: 'unknown',
      dataset: { name: '', uri: run.config.dataset, contentHash: '', classes: [], train: 0, test: 0 },
      params: { trainable: 0, frozen: 0, total: 0, backbone: 0, head: 0 },
      epochs: [],
      status: 'failed',
      error: message,
      timings: { started: new Date().toISOString(), seconds: 0 },
    });
  };

  // Each run's completion is a promise, so a transfer run (weights run:<id>) can wait for its source.
  const release = new Map<string, () => void>();
  for (const run of plan.runs) finished.set(run.id, new Promise<void>((r) => release.set(run.id, r)));
  // A simple pool: `parallel` lanes take the next pending run.
  const lanes = Array.from({ length: lanesCount }, async () => {
    for (let next = pending.shift(); next && !inputError; next = pending.shift()) {
      const [index, run] = next;
      try {
        await runOne(index, run);
      } finally {
        release.get(run.id)!();
      }
    }
  });
  await Promise.all(lanes);
  if (inputError) throw inputError;
  const ordered = plan.runs.map((r) => results.get(r.id)!).filter(Boolean);
  const { files } = await writeReport(ordered, plan.out);
  progress.note(
    `wrote ${files.length} files to ${plan.out} (report.md, results.json, metrics.csv, figures/)`,
  );
  return ordered;
}
