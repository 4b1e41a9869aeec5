// One run: what the API stores, a trainer runs and `headbench compare` trains. Every bound lives here once.
import { z } from 'zod';
import { BACKBONES, MOBILENETV2_ALPHAS } from './backbones.ts';
import { formatIssues, int, list, num, oneOf, strict, text } from './fields.ts';
import { BACKBONE_NAMES, type BackboneName, HEAD_NAMES, OPTIMIZER_NAMES, TRAINABLE_MODES } from './names.ts';
import { packagedWeightsIssue, parseNpmWeights } from './packaged.ts';

export const RUN_LIMITS = {
  /** Input side in pixels (each backbone also has its own minimum, BACKBONES[name].minSize). */
  size: { min: 8, max: 1024 },
  batchSize: 4096,
  epochs: 10_000,
  seed: 2 ** 31 - 1,
  /** Class names a run may list, and their length. */
  classes: 1000,
  className: 128,
  datasetUri: 2000,
  weights: 1000,
  shifts: 32,
} as const;

/** A dataset URI: a class-folder path, `idx:<images>,<labels>`, `generated:flowers17?…`, `dataset:<name>`, an http(s) archive. */
export const DatasetUri = text(RUN_LIMITS.datasetUri);

const RUN_REF = /^run:[\w.-]{1,128}$/;
const URL_REF = /^https?:\/\//i;
/** `scheme:` with two or more letters (a one-letter prefix is a Windows drive). */
const SCHEME = /^[a-z][a-z0-9+.-]+:/i;

export type WeightsKind = 'none' | 'run' | 'npm' | 'url' | 'path';

/** What a weights string names; null when it is none of the accepted forms. */
export function weightsKind(s: string): WeightsKind | null {
  if (s === 'none') return 'none';
  if (s.startsWith('run:')) return RUN_REF.test(s) ? 'run' : null;
  if (s.startsWith('npm:')) return parseNpmWeights(s) ? 'npm' : null;
  if (URL_REF.test(s)) return URL.canParse(s) ? 'url' : null;
  return SCHEME.test(s) ? null : 'path';
}

/** `none`, `run:<id>`, `npm:<package>/<model>`, an http(s) URL of a tfjs layers model, or a path. */
export const WeightsSource = text(RUN_LIMITS.weights).refine((s) => weightsKind(s) !== null, {
  error: 'must be none, run:<id>, npm:<package>/<model>, an http(s) URL or a path',
});

/** `frozen`, `all` (fine-tune everything) or the last N blocks of the backbone. */
export const Trainable = z.union([z.enum(TRAINABLE_MODES), int(1, 64)], {
  error: (iss) => `'${String(iss.input)}' must be frozen, all, or a number of last blocks ≥ 1`,
});
export type Trainable = z.infer<typeof Trainable>;

/** Random augmentation drawn from the run's seed (Keras ImageDataGenerator's common subset). */
export const Augment = strict({
  /** Flip left-right with probability 0.5. */
  horizontalFlip: z.boolean().optional(),
  /** Maximum shift as a fraction of width/height (Keras width_shift_range / height_shift_range). */
  shift: num(0, 0.5).optional(),
  /** Maximum rotation in degrees (Keras rotation_range). */
  rotation: num(0, 180).optional(),
});
export type Augment = z.infer<typeof Augment>;

export const EarlyStopping = strict({
  monitor: oneOf(['val_loss', 'val_accuracy']),
  patience: int(1, RUN_LIMITS.epochs),
});

/**
 * The fields of a run, each with its bounds. A new field is one line here: sweeps take it as a scalar
 * that applies to every run (see sweep.ts) and every validator picks it up.
 */
export const runConfigFields = {
  dataset: DatasetUri,
  /** Explicit class order (Keras `classes=`); default sorted folder names. */
  classes: list(text(RUN_LIMITS.className), RUN_LIMITS.classes).optional(),
  /** `train:val:test` ("6:1:1") or `train:test` ("7:1", the default) with validation carved from train. */
  split: z
    .string()
    .regex(/^[1-9]\d{0,3}:[1-9]\d{0,3}(:[1-9]\d{0,3})?$/, {
      error: 'must look like 6:1:1 (train:val:test) or 7:1 (train:test), positive integers',
    })
    .optional(),
  /** Share of the training part held out for validation with a `train:test` split (default 1/8). */
  valFraction: num(0, 1, { exclusiveMin: true })
    .refine((f) => f < 1, { error: 'must be below 1' })
    .optional(),
  /** Seed of the split (default 0: one split for every run); `seed` uses the run's seed (repeated splits). */
  splitSeed: z
    .custom<number | 'seed'>(
      (v) => v === 'seed' || (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= RUN_LIMITS.seed),
      {
        error: (iss) => `'${String(iss.input)}' must be an integer in [0, 2^31) or 'seed' (repeated splits)`,
      },
    )
    .optional(),
  backbone: oneOf(BACKBONE_NAMES),
  /** MobileNetV2 width multiplier, one of the Keras ImageNet ones. */
  alpha: z
    .number()
    .refine((a) => (MOBILENETV2_ALPHAS as readonly number[]).includes(a), {
      error: `must be one of ${MOBILENETV2_ALPHAS.join(', ')}`,
    })
    .optional(),
  weights: WeightsSource,
  trainable: Trainable,
  head: oneOf(HEAD_NAMES),
  /** Hidden units of the `fc` head (default 512). */
  hidden: int(1, 65_536).optional(),
  dropout: num(0, 0.95).optional(),
  optimizer: oneOf(OPTIMIZER_NAMES),
  lr: num(0, 10, { exclusiveMin: true }),
  /** Keras-style time decay: lr / (1 + decay · iterations). */
  decay: num(0, 1),
  /** SGD momentum (default 0.9). */
  momentum: num(0, 1).optional(),
  batchSize: int(1, RUN_LIMITS.batchSize),
  epochs: int(1, RUN_LIMITS.epochs),
  seed: int(0, RUN_LIMITS.seed),
  /** Square input side in pixels. */
  size: int(RUN_LIMITS.size.min, RUN_LIMITS.size.max),
  augment: Augment.optional(),
  /** Stop when the monitored metric has not improved for `patience` epochs. */
  earlyStopping: EarlyStopping.optional(),
  /** Test images that get a class activation map (heads whose pooling feeds the classifier directly). */
  camSamples: int(0, 1000).optional(),
  /**
   * Shifts (fractions of the width) for the translation-robustness test, default 0, 1/16, 1/8, 1/4: offset crops
   * of the image resized a little larger, in both directions on both axes.
   */
  shifts: z
    .array(num(0, 1).refine((s) => s < 1, { error: 'must be below 1' }))
    .max(RUN_LIMITS.shifts)
    .optional(),
};

export const DEFAULT_SHIFTS = [0, 1 / 16, 1 / 8, 1 / 4];

/** The split seed a run uses: its own seed with repeated splits, else the fixed split seed (default 0). */
export function resolvedSplitSeed(config: { seed: number; splitSeed?: number | 'seed' }): number {
  return config.splitSeed === 'seed' ? config.seed : (config.splitSeed ?? 0);
}

type Issue = { path: PropertyKey[]; message: string };

/** The rules between fields of one run, for one backbone (sweeps check them per backbone). */
export function backboneIssues(
  backbone: BackboneName,
  v: { size?: unknown; alpha?: unknown; trainable?: unknown },
): Issue[] {
  const facts = BACKBONES[backbone];
  if (!facts) return [];
  const out: Issue[] = [];
  if (typeof v.size === 'number' && v.size < facts.minSize)
    out.push({
      path: ['size'],
      message: `${backbone} needs inputs of at least ${facts.minSize}x${facts.minSize} pixels (got ${v.size})`,
    });
  if (typeof v.trainable === 'number' && v.trainable > facts.blocks)
    out.push({
      path: ['trainable'],
      message: `${backbone} has ${facts.blocks} blocks; trainable ${v.trainable} is more than that`,
    });
  return out;
}

export const RunConfig = strict(runConfigFields).superRefine((cfg, ctx) => {
  for (const issue of backboneIssues(cfg.backbone, cfg)) ctx.addIssue({ code: 'custom', ...issue });
  if (cfg.alpha !== undefined && !BACKBONES[cfg.backbone]?.alphas)
    ctx.addIssue({
      code: 'custom',
      path: ['alpha'],
      message: `only mobilenetv2 has a width multiplier (backbone is ${cfg.backbone})`,
    });
  if (cfg.valFraction !== undefined && cfg.split?.split(':').length === 3)
    ctx.addIssue({
      code: 'custom',
      path: ['valFraction'],
      message: `the split ${cfg.split} already sets validation; valFraction applies to train:test ratios only`,
    });
  if (cfg.classes && new Set(cfg.classes).size !== cfg.classes.length)
    ctx.addIssue({ code: 'custom', path: ['classes'], message: 'lists a class twice' });
  const packaged = packagedWeightsIssue(cfg.weights, cfg.backbone, cfg.alpha);
  if (packaged) ctx.addIssue({ code: 'custom', path: ['weights'], message: packaged });
});
export type RunConfig = z.output<typeof RunConfig>;

/** A bad experiment: every problem as "field: message". */
export class SpecError extends Error {
  constructor(
    readonly what: string,
    readonly problems: string[],
  ) {
    super(`invalid ${what}:\n  ${problems.join('\n  ')}`);
    this.name = 'SpecError';
  }
}

/** Parse a run config or throw a SpecError naming every bad field. */
export function parseRunConfig(input: unknown): RunConfig {
  const r = RunConfig.safeParse(input);
  if (!r.success) throw new SpecError('run config', formatIssues(r.error.issues));
  return r.data;
}
