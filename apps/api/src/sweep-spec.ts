import { BACKBONE_NAMES, HEAD_NAMES, OPTIMIZER_NAMES, type RunConfig } from '@headbench/core';
import { z } from 'zod';
import { Requirements } from './protocol.js';

const list = <T extends z.ZodType>(item: T, max = 64) => z.array(item).min(1).max(max);
const one = <T extends z.ZodType>(item: T) => z.union([item, list(item)]);
const Trainable = z.union([z.literal('frozen'), z.literal('all'), z.number().int().min(1).max(1000)]);

/**
 * A grid: every list is an axis (datasets × backbones × weights × heads × optimizers × seeds, and lr /
 * trainable / batchSize when given as lists); scalars apply to every run.
 */
export const SweepSpec = z
  .object({
    name: z.string().min(1).max(200),
    datasets: list(z.string().min(1).max(1000)),
    backbones: list(z.enum(BACKBONE_NAMES)),
    weights: list(z.string().min(1).max(1000)).default(['none']),
    heads: list(z.enum(HEAD_NAMES)),
    optimizers: list(z.enum(OPTIMIZER_NAMES)),
    seeds: list(z.number().int().min(0), 1000).default([0]),
    epochs: z.number().int().min(1).max(10_000),
    batchSize: one(z.number().int().min(1).max(65_536)),
    size: z.number().int().min(8).max(1024),
    trainable: one(Trainable).default('frozen'),
    lr: one(z.number().positive().max(10)),
    decay: z.number().min(0).default(0),
    momentum: z.number().min(0).max(1).optional(),
    hidden: z.number().int().min(1).max(65_536).optional(),
    dropout: z.number().min(0).max(1).optional(),
    alpha: z.number().min(0.35).max(1.4).optional(),
    /** train:val:test ("6:1:1") or train:test ("7:1") with validation carved from train by valFraction. */
    split: z
      .string()
      .regex(/^\d+:\d+(:\d+)?$/)
      .optional(),
    valFraction: z.number().gt(0).lt(1).optional(),
    /** An integer (one split for every run) or 'seed' (repeated splits: each seed its own). */
    splitSeed: z
      .union([
        z
          .number()
          .int()
          .min(0)
          .max(2 ** 31 - 1),
        z.literal('seed'),
      ])
      .optional(),
    classes: z.array(z.string().min(1)).max(10_000).optional(),
    earlyStopping: z
      .object({ monitor: z.enum(['val_loss', 'val_accuracy']), patience: z.number().int().min(1) })
      .optional(),
    camSamples: z.number().int().min(0).max(1000).optional(),
    shifts: z.array(z.number().min(0).max(1)).max(32).optional(),
    augment: z.record(z.string(), z.unknown()).optional(),
    requires: Requirements.optional(),
    maxAttempts: z.number().int().min(1).max(20).default(3),
  })
  .strict();
export type SweepSpec = z.infer<typeof SweepSpec>;
export type SweepSpecInput = z.input<typeof SweepSpec>;

export const MAX_RUNS_PER_SWEEP = 10_000;

const arr = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** Expands the grid in a stable order (datasets outermost, seeds innermost). */
export function expandSweep(spec: SweepSpec): (RunConfig & { requires?: Requirements })[] {
  const out: (RunConfig & { requires?: Requirements })[] = [];
  for (const dataset of spec.datasets)
    for (const backbone of spec.backbones)
      for (const weights of spec.weights)
        for (const head of spec.heads)
          for (const optimizer of spec.optimizers)
            for (const lr of arr(spec.lr))
              for (const trainable of arr(spec.trainable))
                for (const batchSize of arr(spec.batchSize))
                  for (const seed of spec.seeds) {
                    const cfg: RunConfig & { requires?: Requirements } = {
                      dataset,
                      backbone,
                      weights,
                      trainable,
                      head,
                      optimizer,
                      lr,
                      decay: spec.decay,
                      batchSize,
                      epochs: spec.epochs,
                      seed,
                      size: spec.size,
                    };
                    for (const k of [
                      'momentum',
                      'hidden',
                      'dropout',
                      'alpha',
                      'split',
                      'valFraction',
                      'splitSeed',
                      'classes',
                      'earlyStopping',
                      'camSamples',
                      'shifts',
                      'augment',
                      'requires',
                    ] as const) {
                      if (spec[k] !== undefined) (cfg as unknown as Record<string, unknown>)[k] = spec[k];
                    }
                    out.push(cfg);
                  }
  return out;
}

export function gridSize(spec: SweepSpec): number {
  const n = (v: unknown) => (Array.isArray(v) ? v.length : 1);
  return (
    spec.datasets.length *
    spec.backbones.length *
    spec.weights.length *
    spec.heads.length *
    spec.optimizers.length *
    spec.seeds.length *
    n(spec.lr) *
    n(spec.trainable) *
    n(spec.batchSize)
  );
}
