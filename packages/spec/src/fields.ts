// Field builders whose messages say what was wrong and what is valid, e.g.
// "batchSize: 0 is not an integer in [1, 4096]" or "head: 'gapp' is not one of fc, gap, gmp, ...".
import { z } from 'zod';

const shown = (v: unknown) =>
  typeof v === 'string' ? `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'` : String(v);
/** "missing (want)" or "<value> is not <want>". */
const not = (want: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `missing (${want})` : `${shown(iss.input)} is not ${want}`;

/** An integer in [min, max]. */
export function int(min: number, max: number) {
  const error = not(`an integer in [${min}, ${max}]`);
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A finite number in [min, max] (`exclusiveMin`: (min, max]). */
export function num(min: number, max: number, opts: { exclusiveMin?: boolean } = {}) {
  const range = `${opts.exclusiveMin ? '(' : '['}${min}, ${max}]`;
  const error = not(`a number in ${range}`);
  const base = z.number({ error });
  return (opts.exclusiveMin ? base.gt(min, { error }) : base.min(min, { error })).max(max, { error });
}

/** One of a fixed list of names. */
export function oneOf<const T extends readonly [string, ...string[]]>(names: T) {
  return z.enum(names, { error: not(`one of ${names.join(', ')}`) });
}

// Control characters (C0, DEL, C1) never belong in a name, a path or a URL: they hide text in logs and terminals.
const PRINTABLE = /^[^\p{Cc}]*$/u;

/** A non-empty string of at most `max` characters, without control characters. */
export function text(max: number) {
  return z
    .string({ error: not('a string') })
    .min(1, { error: 'must not be empty' })
    .max(max, {
      error: (iss) => `is ${String((iss.input as string).length)} characters long; the limit is ${max}`,
    })
    .regex(PRINTABLE, { error: 'must not contain control characters' });
}

/** A list of 1..max items. */
export function list<T extends z.ZodType>(item: T, max: number) {
  return z
    .array(item, { error: not('a list') })
    .min(1, { error: 'must not be empty' })
    .max(max, { error: (iss) => `has ${(iss.input as unknown[]).length} items; the limit is ${max}` });
}

/** An object that refuses unknown fields, naming them and the valid ones. */
export function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const valid = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `'${k}'`).join(', ')} (valid: ${valid})`
        : not('an object')(iss),
  });
}

/** Problems listed before "… and N more": a hostile input can carry thousands. */
export const MAX_LISTED_ISSUES = 20;

type Issue = { path: readonly PropertyKey[]; message: string; code?: string; errors?: Issue[][] };

/**
 * A failed union (e.g. `lr`: a number or a list of numbers) as the problems of the branch the input meant:
 * the one that got deepest into the value, else the first (the scalar).
 */
function flatten(issue: Issue): Issue[] {
  if (issue.code !== 'invalid_union' || !issue.errors?.length) return [issue];
  const depth = (branch: Issue[]) => Math.max(...branch.map((i) => i.path.length));
  const branch = issue.errors.reduce((best, b) => (depth(b) > depth(best) ? b : best));
  return branch.flatMap((i) => flatten({ ...i, path: [...issue.path, ...i.path] }));
}

/** Zod issues as "field.path: message" lines, the form every caller (CLI, API, dashboard) shows them in. */
export function formatIssues(issues: readonly Issue[]): string[] {
  const flat = issues.flatMap(flatten);
  const lines = flat
    .slice(0, MAX_LISTED_ISSUES)
    .map((i) => `${i.path.map(String).join('.') || '(input)'}: ${i.message}`);
  if (flat.length > MAX_LISTED_ISSUES) lines.push(`… and ${flat.length - MAX_LISTED_ISSUES} more problems`);
  return lines;
}
