// Sweep spec files: the one experiment file `headbench compare --spec` runs locally and `headbench submit`
// sends to the fleet. YAML (.yaml, .yml) or JSON; validated by @headbench/spec, so both commands (and the
// API) answer the same messages.
import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { HeadbenchInputError } from '@headbench/core';
import { formatIssues, type SweepSpec, SweepSpec as SweepSpecSchema } from '@headbench/spec';
import { parse as parseYaml } from 'yaml';

/** A spec file is a few kilobytes; anything far larger is not one. */
const MAX_SPEC_FILE_BYTES = 1024 * 1024;

export async function readSpecFile(path: string): Promise<SweepSpec> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) throw new HeadbenchInputError(`spec file does not exist: ${path}`, path);
  if (info.size > MAX_SPEC_FILE_BYTES)
    throw new HeadbenchInputError(
      `${path}: ${info.size} bytes; a spec file may have at most ${MAX_SPEC_FILE_BYTES}`,
      path,
    );
  const text = await readFile(path, 'utf8');
  const ext = extname(path).toLowerCase();
  let raw: unknown;
  try {
    raw = ext === '.json' ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new HeadbenchInputError(
      `${path}: not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
      path,
    );
  }
  const r = SweepSpecSchema.safeParse(raw);
  if (!r.success)
    throw new HeadbenchInputError(
      `${path}: invalid sweep spec:\n  ${formatIssues(r.error.issues).join('\n  ')}`,
      path,
    );
  return r.data;
}
