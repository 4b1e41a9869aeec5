// `headbench compare`'s experiment: its flags are a sweep spec written on the command line, so a spec file
// (`--spec`) and flags give the same runs, the same config hashes and the same validation messages.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HeadbenchInputError } from '@headbench/core';
import {
  BACKBONE_NAMES,
  BACKEND_NAMES,
  type BackendName,
  expandSweep,
  formatIssues,
  HEAD_NAMES,
  ONE_OR_MANY,
  OPTIMIZER_NAMES,
  PRESET_NAMES,
  PRESETS,
  type PresetName,
  type RunConfig,
  runConfigHash,
  type SweepSpec,
  SweepSpec as SweepSpecSchema,
} from '@headbench/spec';
import { readSpecFile } from './spec-file.js';

type Flag = { type: 'string' | 'boolean'; default?: string; help: string; short?: string };

/** Flags that describe the experiment: each sets one sweep spec field (`field`), as a list when `list`. */
const EXPERIMENT_FLAGS = {
  data: {
    type: 'string',
    default: 'generated:flowers17',
    help: 'dataset URI: folder | idx:<images>,<labels> | generated:flowers17[?seed=&size=&perClass=]',
    field: 'datasets',
  },
  classes: {
    type: 'string',
    help: 'comma-separated class order (default: sorted folder names)',
    field: 'classes',
    list: true,
  },
  split: {
    type: 'string',
    default: '7:1',
    help: 'train:val:test (6:1:1) or train:test (7:1) with validation carved from train by --val-fraction; datasets with train/ and test/ folders keep theirs',
    field: 'split',
  },
  'val-fraction': {
    type: 'string',
    help: 'share of the training part held out for validation with a train:test split (default 0.125)',
    field: 'valFraction',
  },
  'split-seed': {
    type: 'string',
    default: 'seed',
    help: "seed of the split: an integer (one split for every run) or 'seed' (repeated splits: each seed its own)",
    field: 'splitSeed',
  },
  backbone: {
    type: 'string',
    default: 'smallcnn',
    help: `comma-separated backbones: ${BACKBONE_NAMES.join(', ')}`,
    field: 'backbones',
    list: true,
  },
  alpha: {
    type: 'string',
    help: 'MobileNetV2 width multiplier: 0.35, 0.5, 0.75, 1, 1.3 or 1.4',
    field: 'alpha',
  },
  weights: {
    type: 'string',
    default: 'none',
    help: 'none | a tfjs layers model path or URL | npm:<package>/<model> | run:<id> (a model from --out/runs)',
    field: 'weights',
  },
  trainable: {
    type: 'string',
    default: 'all',
    help: 'frozen | all | N (the last N blocks); comma-separated for several',
    field: 'trainable',
    list: true,
  },
  heads: {
    type: 'string',
    default: 'fc,gap,gmp',
    help: `comma-separated heads: ${HEAD_NAMES.join(', ')}`,
    field: 'heads',
    list: true,
  },
  hidden: { type: 'string', default: '512', help: 'hidden units of the fc head', field: 'hidden' },
  dropout: { type: 'string', default: '0', help: 'dropout before the classifier', field: 'dropout' },
  epochs: {
    type: 'string',
    default: '10',
    help: 'epochs per run (the reference experiment: 50)',
    field: 'epochs',
  },
  batch: {
    type: 'string',
    default: '32',
    help: 'batch size; comma-separated for several',
    field: 'batchSize',
    list: true,
  },
  optimizer: {
    type: 'string',
    default: 'rmsprop',
    help: `optimizers, comma-separated: ${OPTIMIZER_NAMES.join(', ')}`,
    field: 'optimizers',
    list: true,
  },
  lr: {
    type: 'string',
    default: '1e-3',
    help: 'learning rate (Keras RMSprop default; the reference fine-tuning used 1e-4); comma-separated for several',
    field: 'lr',
    list: true,
  },
  decay: {
    type: 'string',
    default: '1e-6',
    help: 'Keras-style time decay: lr / (1 + decay · iterations)',
    field: 'decay',
  },
  momentum: { type: 'string', default: '0.9', help: 'SGD momentum', field: 'momentum' },
  seeds: {
    type: 'string',
    default: '3',
    help: 'number of seeds (0..N-1), or a comma-separated list',
    field: 'seeds',
  },
  size: { type: 'string', default: '224', help: 'input size in pixels (square)', field: 'size' },
  augment: { type: 'string', help: 'augmentation: flip,shift=0.1,rotation=10', field: 'augment' },
  'early-stopping': {
    type: 'string',
    help: 'val_loss:PATIENCE or val_accuracy:PATIENCE',
    field: 'earlyStopping',
  },
  'cam-samples': {
    type: 'string',
    default: '8',
    help: 'test images that get a class activation map',
    field: 'camSamples',
  },
} as const satisfies Record<string, Flag & { field: keyof SweepSpec; list?: true }>;

/** Flags about how to run it here: the same with --spec or without. */
const RUN_FLAGS = {
  spec: { type: 'string', help: 'a sweep spec file (YAML or JSON) instead of the experiment flags above' },
  preset: {
    type: 'string',
    help: `a named experiment whose flags replace the defaults (flags you give win): ${PRESET_NAMES.join(', ')}`,
  },
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
  'dry-run': { type: 'boolean', help: 'print the runs (id, config hash, config) and train nothing' },
  json: { type: 'boolean', help: 'print the outcome as JSON on stdout (progress stays on stderr)' },
  quiet: { type: 'boolean', help: 'no progress bar' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
} as const satisfies Record<string, Flag>;

const FLAGS = { ...EXPERIMENT_FLAGS, ...RUN_FLAGS };
/** What parseArgs gets: no defaults, so a flag the user gave is told apart from one left alone. */
const PARSE_OPTIONS = Object.fromEntries(
  Object.entries(FLAGS).map(([k, f]) => [k, { type: f.type, ...('short' in f ? { short: f.short } : {}) }]),
) as never;

export const COMPARE_HELP = `headbench compare — train every backbone × head × seed and write the report

Usage: headbench compare [flags]
       headbench compare --spec sweep.yaml [--out DIR] [--backend B] [--parallel N] [--json] [--dry-run]

Experiment (each flag is the sweep spec field named after it; a spec file replaces them all):
${Object.entries(EXPERIMENT_FLAGS)
  .map(
    ([k, f]) =>
      `  --${k.padEnd(18)} ${f.help}${'default' in f ? ` (default ${f.default})` : ''} [${f.field}]`,
  )
  .join('\n')}

Running:
${Object.entries(RUN_FLAGS)
  .map(([k, f]) => `  --${k.padEnd(18)} ${f.help}${'default' in f ? ` (default ${f.default})` : ''}`)
  .join('\n')}

Exit status: 0 when every run succeeded, 1 when any failed (a summary lists them), 2 on bad input.

Example (the reference experiment):
  headbench compare --data path/to/flowers17 --backbone vgg19,inceptionv3 --weights imagenet/vgg19 \\
    --trainable all --heads fc,gap,gmp --epochs 50 --batch 32 --optimizer rmsprop --lr 1e-4 --decay 1e-6 \\
    --seeds 3 --size 224 --out results/`;

export interface ComparePlan {
  spec: SweepSpec;
  /** `--preset`: its name, the flags it set and those the command line overrode. */
  preset?: { name: PresetName; description: string; set: string[]; overridden: string[] };
  runs: Array<{ id: string; hash: string; config: RunConfig }>;
  out: string;
  home: string;
  backend: BackendName;
  featureCache: boolean;
  quiet: boolean;
  json: boolean;
  dryRun: boolean;
  parallel: number;
}

/** "3" → 3, "a" stays "a": the spec's schema then names what is wrong with it. */
const value = (s: string): string | number => (s.trim() !== '' && Number.isFinite(Number(s)) ? Number(s) : s);

function augmentOf(text: string): unknown {
  const out: Record<string, unknown> = {};
  for (const part of text.split(',')) {
    const [k, v] = part.split('=');
    if (k === 'flip' && v === undefined) out.horizontalFlip = true;
    else if ((k === 'shift' || k === 'rotation') && v !== undefined) out[k] = value(v);
    else
      throw new HeadbenchInputError(
        `--augment: cannot read '${part}' (valid: flip, shift=<fraction>, rotation=<degrees>)`,
      );
  }
  return out;
}

function earlyStoppingOf(text: string): unknown {
  const [monitor, patience] = text.split(':');
  if (patience === undefined)
    throw new HeadbenchInputError(
      `--early-stopping: '${text}' must be val_loss:PATIENCE or val_accuracy:PATIENCE`,
    );
  return { monitor, patience: value(patience) };
}

/** The sweep spec the experiment flags describe (unparsed: the schema checks it). */
function specFromFlags(values: Record<string, string | boolean | undefined>): Record<string, unknown> {
  const spec: Record<string, unknown> = { name: 'compare' };
  for (const [flag, f] of Object.entries(EXPERIMENT_FLAGS)) {
    const raw = values[flag] as string | undefined;
    if (raw === undefined) continue;
    const items = raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (flag === 'seeds')
      spec.seeds = raw.includes(',')
        ? items.map(value)
        : Array.from({ length: Number(value(raw)) || 0 }, (_, i) => i);
    else if (flag === 'augment') spec.augment = augmentOf(raw);
    else if (flag === 'early-stopping') spec.earlyStopping = earlyStoppingOf(raw);
    else if (flag === 'classes') spec.classes = items;
    // One dataset and one weights source: their URIs may hold commas (idx:<images>,<labels>).
    else if (flag === 'data' || flag === 'weights') spec[f.field] = [raw];
    // lr, trainable and batchSize take one value or a list: one value stays a scalar, as in a spec file.
    else if ('list' in f)
      spec[f.field] =
        items.length === 1 && (ONE_OR_MANY as readonly string[]).includes(f.field)
          ? value(items[0])
          : items.map(value);
    else spec[f.field] = value(raw);
  }
  if (typeof values.seeds === 'string' && !values.seeds.includes(',') && !(Number(values.seeds) >= 1))
    throw new HeadbenchInputError(
      `--seeds: '${values.seeds}' is not a number of seeds ≥ 1 or a list of seeds`,
    );
  return spec;
}

const FLAG_OF_FIELD = Object.fromEntries(
  Object.entries(EXPERIMENT_FLAGS).map(([flag, f]) => [f.field, flag]),
);

/** Parse and validate; every problem names the flag (or the spec file's field) and what is valid. */
export async function parseCompareArgs(argv: string[]): Promise<ComparePlan | 'help'> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: PARSE_OPTIONS,
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
  let preset: ComparePlan['preset'];
  let presetValues: Record<string, string> = {};
  if (typeof values.preset === 'string') {
    const name = values.preset as PresetName;
    if (!Object.hasOwn(PRESETS, name))
      throw new HeadbenchInputError(
        `--preset: unknown preset '${values.preset.slice(0, 100)}' (valid: ${PRESET_NAMES.join(', ')})`,
      );
    if (typeof values.spec === 'string')
      throw new HeadbenchInputError('compare: --spec and --preset both describe the experiment; give one');
    presetValues = Object.fromEntries(
      Object.entries(PRESETS[name].fields).map(([field, v]) => [
        FLAG_OF_FIELD[field],
        Array.isArray(v) ? v.join(',') : String(v),
      ]),
    );
    const given = (flag: string) => values[flag] !== undefined;
    preset = {
      name,
      description: PRESETS[name].description,
      set: Object.entries(presetValues)
        .filter(([flag]) => !given(flag))
        .map(([flag, v]) => `--${flag} ${v}`),
      overridden: Object.keys(presetValues)
        .filter(given)
        .map((flag) => `--${flag} ${values[flag]}`),
    };
  }
  let spec: SweepSpec;
  if (typeof values.spec === 'string') {
    const given = Object.keys(EXPERIMENT_FLAGS).filter((k) => values[k] !== undefined);
    if (given.length)
      throw new HeadbenchInputError(
        `compare: --spec describes the experiment; drop ${given.map((k) => `--${k}`).join(', ')} (or edit the file)`,
      );
    spec = await readSpecFile(values.spec);
  } else {
    const defaults = Object.fromEntries(
      Object.entries(EXPERIMENT_FLAGS).flatMap(([k, f]) => ('default' in f ? [[k, f.default]] : [])),
    );
    const r = SweepSpecSchema.safeParse(specFromFlags({ ...defaults, ...presetValues, ...values }));
    if (!r.success) {
      const issues = r.error.issues.map((i) => {
        const flag = FLAG_OF_FIELD[String(i.path[0])];
        return {
          ...i,
          path: flag ? [`--${flag}`, ...i.path.slice(1).filter((p) => typeof p !== 'number')] : i.path,
        };
      });
      throw new HeadbenchInputError(`compare: invalid experiment:\n  ${formatIssues(issues).join('\n  ')}`);
    }
    spec = r.data;
  }
  const str = (k: keyof typeof RUN_FLAGS) =>
    (values[k] as string | undefined) ?? (RUN_FLAGS[k] as Flag).default;
  const backend = str('backend');
  if (!(BACKEND_NAMES as readonly string[]).includes(backend ?? ''))
    throw new HeadbenchInputError(
      `--backend: unknown value '${backend}' (valid: ${BACKEND_NAMES.join(', ')})`,
    );
  const parallel = values.parallel === undefined ? availableParallelism() : Number(values.parallel);
  if (!(Number.isInteger(parallel) && parallel >= 1 && parallel <= 64))
    throw new HeadbenchInputError(`--parallel: '${values.parallel}' is not an integer in [1, 64]`);
  return {
    spec,
    ...(preset ? { preset } : {}),
    runs: expandSweep(spec).map(({ requires: _where, ...config }) => {
      const hash = runConfigHash(config);
      return { id: `${config.backbone}-${config.head}-s${config.seed}-${hash.slice(0, 6)}`, hash, config };
    }),
    out: resolve(str('out')!),
    home: resolve(str('home')!),
    backend: backend as BackendName,
    featureCache: !values['no-feature-cache'],
    quiet: !!values.quiet,
    json: !!values.json,
    dryRun: !!values['dry-run'],
    parallel,
  };
}

/** What `--preset` set, for the terminal: every flag it filled in, and the ones the command line overrode. */
export function presetSummary(preset: NonNullable<ComparePlan['preset']>): string {
  return [
    `preset ${preset.name}: ${preset.description}`,
    `  sets ${preset.set.join(' ')}`,
    ...(preset.overridden.length ? [`  your flags win: ${preset.overridden.join(' ')}`] : []),
  ].join('\n');
}
