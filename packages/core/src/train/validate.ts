import { parseRunConfig, type RunConfig, SpecError } from '@headbench/spec';
import { HeadbenchInputError } from '../errors.js';

/** Check a run config against the spec's schema; every bad field is named with its valid values. */
export function validateRunConfig(input: Partial<RunConfig>): RunConfig {
  try {
    return parseRunConfig(input);
  } catch (e) {
    if (e instanceof SpecError) throw new HeadbenchInputError(e.message);
    throw e;
  }
}
