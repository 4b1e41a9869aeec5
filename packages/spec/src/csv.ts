// CSV cells, one rule for every export (compare's metrics.csv, the dashboard's series CSV).
import { canonicalJson } from './canonical.ts';

/**
 * Characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection"): such text cells get
 * a leading apostrophe, so a run name or class name like `=HYPERLINK(...)` stays text. Numbers stay numbers.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV cell: empty for null/undefined, canonical JSON for objects, quoted when it holds , " or a newline. */
export function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  let s = typeof v === 'object' ? canonicalJson(v) : String(v);
  if (typeof v !== 'number' && typeof v !== 'bigint' && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV line. */
export const csvRow = (cells: readonly unknown[]): string => cells.map(csvCell).join(',');
