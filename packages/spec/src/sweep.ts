// A sweep: a grid of runs. Axes are lists (datasets × backbones × weights × heads × optimizers × seeds,
// and lr / trainable / batchSize when given as lists); every other run field is a scalar for all runs.
import { z } from 'zod';
import { BACKBONES } from './backbones.ts';
import { canonicalJson } from './canonical.ts';
import { formatIssues, int, list, strict, text } from './fields.ts';
import { packagedWeightsIssue } from './packaged.ts';
import { Requirements } from './protocol.ts';
import { backboneIssues, type RunConfig, runConfigFields, SpecError } from './run-config.ts';

export const MAX_RUNS_PER_SWEEP = 10_000;
/** The configs of one sweep, stored and sent to trainers, total at most this many bytes (JSON). */
export const MAX_SWEEP_CONFIG_BYTES = 16 * 1024 * 1024;

/** List axes: the sweep's plural key → the run field it sets. */
export const LIST_AXES = {
  datasets: 'dataset',
  backbones: 'backbone',
  weights: 'weights',
  heads: 'head',
  optimizers: 'optimizer',
  seeds: 'seed',
} as const;
/** Run fields a sweep takes as one value or a list of values (a list is an axis). */
export const ONE_OR_MANY = ['lr', 'trainable', 'batchSize'] as const;

const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, list(item, 16)]);
const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

const { dataset, backbone, weights, head, optimizer, seed, lr, trainable, batchSize, decay, ...scalars } =
  runConfigFields;

const sweepFields = {
  name: text(200),
  datasets: list(dataset, 64),
  backbones: list(backbone, 16),
  weights: list(weights, 64).default(['none']),
  heads: list(head, 16),
  optimizers: list(optimizer, 8),
  seeds: list(seed, 1000).default([0]),
  lr: oneOrMany(lr),
  trainable: oneOrMany(trainable).default('frozen'),
  batchSize: oneOrMany(batchSize),
  decay: decay.default(0),
  ...scalars,
  /** Only trainers meeting these lease the sweep's runs. */
  requires: Requirements.optional(),
  maxAttempts: int(1, 20).default(3),
};

type Issue = { path: PropertyKey[]; message: string };

function gridOf(
  spec: {
    [K in keyof typeof LIST_AXES]: unknown[];
  } & { lr: unknown; trainable: unknown; batchSize: unknown },
): number {
  let n = 1;
  for (const k of Object.keys(LIST_AXES) as (keyof typeof LIST_AXES)[]) n *= spec[k].length;
  for (const k of ONE_OR_MANY) n *= asList(spec[k]).length;
  return n;
}

/**
 * Upper bound of the JSON bytes of all the sweep's configs, without building them: each run holds the
 * shared fields and one value per axis, at most the longest one.
 */
export function sweepConfigBytes(spec: SweepSpec): number {
  const { name: _n, maxAttempts: _m, ...shared } = spec as Record<string, unknown>;
  let perRun = canonicalJson(
    Object.fromEntries(
      Object.entries(shared).filter(
        ([k]) => !(k in LIST_AXES) && !(ONE_OR_MANY as readonly string[]).includes(k),
      ),
    ),
  ).length;
  const axes = [...Object.keys(LIST_AXES), ...ONE_OR_MANY] as (keyof SweepSpec)[];
  for (const k of axes)
    perRun += 16 + Math.max(...asList(spec[k] as unknown).map((v) => canonicalJson(v).length));
  return perRun * gridOf(spec);
}

function sweepIssues(spec: SweepSpec): Issue[] {
  const out: Issue[] = [];
  const runs = gridOf(spec);
  if (runs > MAX_RUNS_PER_SWEEP)
    return [
      {
        path: [],
        message: `the grid has ${runs} runs (datasets × backbones × weights × heads × optimizers × seeds × lr × trainable × batchSize); the limit is ${MAX_RUNS_PER_SWEEP}`,
      },
    ];
  for (const k of [...Object.keys(LIST_AXES), ...ONE_OR_MANY] as (keyof SweepSpec)[]) {
    const values = asList(spec[k] as unknown).map(canonicalJson);
    const twice = values.find((v, i) => values.indexOf(v) !== i);
    if (twice !== undefined)
      out.push({ path: [k], message: `lists ${twice} twice (the runs would be the same)` });
  }
  for (const b of spec.backbones)
    for (const t of asList(spec.trainable))
      for (const issue of backboneIssues(b, { size: spec.size, trainable: t }))
        if (!out.some((o) => o.message === issue.message)) out.push(issue);
  for (const b of spec.backbones)
    for (const w of spec.weights) {
      const issue = packagedWeightsIssue(w, b, BACKBONES[b].alphas ? spec.alpha : undefined);
      if (issue) out.push({ path: ['weights'], message: issue });
    }
  if (spec.alpha !== undefined && !spec.backbones.some((b) => BACKBONES[b].alphas))
    out.push({
      path: ['alpha'],
      message: `only mobilenetv2 has a width multiplier (backbones: ${spec.backbones.join(', ')})`,
    });
  if (spec.classes && new Set(spec.classes).size !== spec.classes.length)
    out.push({ path: ['classes'], message: 'lists a class twice' });
  const bytes = sweepConfigBytes(spec);
  if (bytes > MAX_SWEEP_CONFIG_BYTES)
    out.push({
      path: [],
      message: `the sweep's ${runs} run configs would take up to ${bytes} bytes; the limit is ${MAX_SWEEP_CONFIG_BYTES} (fewer runs, or shorter classes/URIs)`,
    });
  return out;
}

export const SweepSpec = strict(sweepFields).superRefine((spec, ctx) => {
  for (const issue of sweepIssues(spec as SweepSpec)) ctx.addIssue({ code: 'custom', ...issue });
});
export type SweepSpec = z.output<typeof SweepSpec>;
export type SweepSpecInput = z.input<typeof SweepSpec>;

/** Parse a sweep spec or throw a SpecError naming every bad field. */
export function parseSweepSpec(input: unknown): SweepSpec {
  const r = SweepSpec.safeParse(input);
  if (!r.success) throw new SpecError('sweep spec', formatIssues(r.error.issues));
  return r.data;
}

export function gridSize(spec: SweepSpec): number {
  return gridOf(spec);
}

export type SweepRunConfig = RunConfig & { requires?: Requirements };

/**
 * The sweep's runs in a stable order (datasets outermost, seeds innermost). Scalars are copied into every
 * run, except `alpha` into backbones without a width multiplier.
 */
export function expandSweep(spec: SweepSpec): SweepRunConfig[] {
  const { name: _name, maxAttempts: _attempts, requires, ...rest } = spec;
  const shared = Object.fromEntries(
    Object.entries(rest).filter(
      ([k, v]) => v !== undefined && !(k in LIST_AXES) && !(ONE_OR_MANY as readonly string[]).includes(k),
    ),
  );
  const out: SweepRunConfig[] = [];
  for (const dataset of spec.datasets)
    for (const backbone of spec.backbones)
      for (const weights of spec.weights)
        for (const head of spec.heads)
          for (const optimizer of spec.optimizers)
            for (const lr of asList(spec.lr))
              for (const trainable of asList(spec.trainable))
                for (const batchSize of asList(spec.batchSize))
                  for (const seed of spec.seeds) {
                    const cfg: Record<string, unknown> = {
                      dataset,
                      backbone,
                      weights,
                      trainable,
                      head,
                      optimizer,
                      lr,
                      batchSize,
                      seed,
                      ...shared,
                    };
                    if (!BACKBONES[backbone].alphas) delete cfg.alpha;
                    out.push((requires ? { ...cfg, requires } : cfg) as SweepRunConfig);
                  }
  return out;
}
