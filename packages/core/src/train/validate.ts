import { BACKBONE_NAMES, HEAD_NAMES, OPTIMIZER_NAMES, type RunConfig } from '../config.js';
import { splitFractions } from '../data/split.js';
import { HeadbenchInputError } from '../errors.js';

/** Check a run config and name every bad field with its valid values; returns the config with defaults filled. */
export function validateRunConfig(input: Partial<RunConfig>): RunConfig {
  const problems: string[] = [];
  const oneOf = (field: keyof RunConfig, valid: readonly string[]) => {
    const v = input[field];
    if (typeof v !== 'string' || !valid.includes(v)) {
      problems.push(`${field}: '${String(v)}' is not one of ${valid.join(', ')}`);
    }
  };
  const num = (field: keyof RunConfig, min: number, max: number, integer = false) => {
    const v = input[field];
    if (
      typeof v !== 'number' ||
      !Number.isFinite(v) ||
      v < min ||
      v > max ||
      (integer && !Number.isInteger(v))
    ) {
      problems.push(
        `${field}: ${String(v)} must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}]`,
      );
    }
  };
  if (typeof input.dataset !== 'string' || input.dataset.length === 0) problems.push('dataset: missing');
  oneOf('backbone', BACKBONE_NAMES);
  oneOf('head', HEAD_NAMES);
  oneOf('optimizer', OPTIMIZER_NAMES);
  num('lr', 0, 10);
  num('decay', 0, 1);
  num('batchSize', 1, 4096, true);
  num('epochs', 1, 100000, true);
  num('seed', 0, 2 ** 31 - 1, true);
  num('size', 16, 2048, true);
  if (input.alpha !== undefined) num('alpha', 0.1, 2);
  if (input.dropout !== undefined) num('dropout', 0, 0.95);
  if (input.hidden !== undefined) num('hidden', 1, 65536, true);
  const t = input.trainable;
  if (!(t === 'frozen' || t === 'all' || (typeof t === 'number' && Number.isInteger(t) && t >= 1))) {
    problems.push(`trainable: '${String(t)}' must be frozen, all, or a number of last blocks ≥ 1`);
  }
  if (typeof input.weights !== 'string' || input.weights.length === 0)
    problems.push('weights: missing (use none)');
  if (input.earlyStopping) {
    if (!['val_loss', 'val_accuracy'].includes(input.earlyStopping.monitor)) {
      problems.push(
        `earlyStopping.monitor: '${input.earlyStopping.monitor}' is not one of val_loss, val_accuracy`,
      );
    }
    if (!(Number.isInteger(input.earlyStopping.patience) && input.earlyStopping.patience >= 1)) {
      problems.push('earlyStopping.patience: must be an integer ≥ 1');
    }
  }
  if (input.split !== undefined || input.valFraction !== undefined) {
    try {
      splitFractions(input.split, input.valFraction);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const ss = input.splitSeed;
  if (
    !(
      ss === undefined ||
      ss === 'seed' ||
      (Number.isInteger(ss) && (ss as number) >= 0 && (ss as number) < 2 ** 31)
    )
  )
    problems.push(`splitSeed: '${String(ss)}' must be an integer in [0, 2^31) or 'seed' (repeated splits)`);
  if (input.shifts && !input.shifts.every((s) => s >= 0 && s < 1))
    problems.push('shifts: each must be in [0, 1)');
  if (problems.length) throw new HeadbenchInputError(`invalid run config:\n  ${problems.join('\n  ')}`);
  return input as RunConfig;
}
