import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
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
  type RunConfig,
  type RunResult,
  runConfigHash,
  type Trainable,
  trainRun,
  validateRunConfig,
  writeReport,
} from '@headbench/core';
import { Progress } from './progress.js';

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
    help: 'train:test ratio when the dataset has no train/ and test/ folders',
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
  epochs: { type: 'string', default: '50', help: 'epochs per run' },
  batch: { type: 'string', default: '32', help: 'batch size' },
  optimizer: { type: 'string', default: 'rmsprop', help: `optimizer: ${OPTIMIZER_NAMES.join(', ')}` },
  lr: { type: 'string', default: '1e-4', help: 'learning rate' },
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

/** Run the plan: finished runs (result.json with the same config) are kept, interrupted ones resume. */
export async function runCompare(plan: ComparePlan): Promise<RunResult[]> {
  await mkdir(plan.out, { recursive: true });
  const progress = new Progress(plan.runs.length, plan.quiet);
  const results: RunResult[] = [];
  for (const [i, run] of plan.runs.entries()) {
    const runDir = join(plan.out, 'runs', run.id);
    const done = await readFile(join(runDir, 'result.json'), 'utf8')
      .then((s) => JSON.parse(s) as RunResult)
      .catch(() => undefined);
    if (done?.status === 'succeeded' && runConfigHash(done.config) === runConfigHash(run.config)) {
      progress.note(`[${i + 1}/${plan.runs.length}] ${run.id}: already done, kept`);
      results.push(done);
      continue;
    }
    progress.startRun(i, run.id, run.config.epochs);
    try {
      const result = await trainRun({
        config: run.config,
        runId: run.id,
        runDir,
        outDir: plan.out,
        home: plan.home,
        backend: plan.backend,
        featureCache: plan.featureCache,
        resolveWeights: async (ref) => join(plan.out, 'runs', ref.slice('run:'.length), 'model'),
        onBatch: (m) => progress.batch(m),
        onEpoch: (m) => progress.epoch(m),
        onLog: (msg) => progress.log(msg),
      });
      progress.endRun(result);
      results.push(result);
    } catch (err) {
      if (err instanceof HeadbenchInputError) throw err;
      progress.note(`${run.id} failed: ${(err as Error).message}`);
      results.push({
        id: run.id,
        config: run.config,
        backend: 'unknown',
        dataset: { name: '', uri: run.config.dataset, contentHash: '', classes: [], train: 0, test: 0 },
        params: { trainable: 0, frozen: 0, total: 0, backbone: 0, head: 0 },
        epochs: [],
        status: 'failed',
        error: (err as Error).message,
        timings: { started: new Date().toISOString(), seconds: 0 },
      });
    }
  }
  const { files } = await writeReport(results, plan.out);
  progress.note(
    `wrote ${files.length} files to ${plan.out} (report.md, results.json, metrics.csv, figures/)`,
  );
  return results;
}
