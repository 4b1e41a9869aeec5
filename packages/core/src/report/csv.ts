import { csvRow } from '@headbench/spec';
import type { RunConfig } from '../config.js';
import type { RunResult } from '../results.js';
import { EPOCH_METRICS, varyingKeys } from './stats.js';

const FIXED_KEYS: (keyof RunConfig)[] = ['backbone', 'head', 'seed'];

/**
 * One row per run × epoch (failed and running runs included: their logged epochs are real data).
 * Besides backbone, head and seed, only config keys that differ between runs get a column.
 */
export function metricsCsv(results: readonly RunResult[]): string {
  const extra = varyingKeys(results).filter((k) => !FIXED_KEYS.includes(k));
  // A config key that shares a metric's name (lr) gets a prefix so columns stay unique.
  const metricNames = new Set<string>(['epoch', ...EPOCH_METRICS]);
  const header = [
    'run_id',
    ...FIXED_KEYS,
    ...extra.map((k) => (metricNames.has(k) ? `config_${k}` : k)),
    'epoch',
    ...EPOCH_METRICS,
  ];
  const lines = [header.join(',')];
  for (const r of results) {
    const prefix = [r.id, ...FIXED_KEYS.map((k) => r.config[k]), ...extra.map((k) => r.config[k])];
    for (const e of r.epochs) {
      lines.push(csvRow([...prefix, e.epoch, ...EPOCH_METRICS.map((m) => e[m])]));
    }
  }
  return `${lines.join('\n')}\n`;
}

const SUMMARY_COLUMNS = [
  'selected_epoch',
  'val_accuracy',
  'test_accuracy',
  'test_loss',
  'last_epoch',
  'test_accuracy_last',
  'train_accuracy',
  'gap',
] as const;

/**
 * One row per finished run: its split (seed, hash) and what it measured at the validation-selected epoch and
 * the last — the numbers the report's tables are computed from.
 */
export function summaryCsv(results: readonly RunResult[]): string {
  const header = ['run_id', ...FIXED_KEYS, 'split_seed', 'split_hash', ...SUMMARY_COLUMNS];
  const lines = [header.join(',')];
  for (const r of results) {
    if (!r.summary || r.status !== 'succeeded') continue;
    const s = r.summary;
    lines.push(
      csvRow([
        r.id,
        ...FIXED_KEYS.map((k) => r.config[k]),
        r.provenance?.split.seed,
        s.split_hash,
        ...SUMMARY_COLUMNS.map((k) => s[k]),
      ]),
    );
  }
  return `${lines.join('\n')}\n`;
}
