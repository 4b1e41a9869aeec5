// Tokens from files: only a file its owner alone can read counts as secret (a token others can read is
// already shared). Used by `headbench-trainer --token-file` and `headbench submit --token-file`.
import { readFile, stat } from 'node:fs/promises';
import { HeadbenchInputError } from '@headbench/core';

/** The token in `file`; refused when it is missing, empty, or readable by group or others. */
export async function readTokenFile(file: string): Promise<string> {
  const info = await stat(file).catch((e: NodeJS.ErrnoException) => {
    throw new HeadbenchInputError(
      `--token-file ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
      file,
    );
  });
  if (!info.isFile()) throw new HeadbenchInputError(`--token-file ${file}: not a regular file`, file);
  if (info.mode & 0o077)
    throw new HeadbenchInputError(
      `--token-file ${file}: group or others can read it (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 ${file}`,
      file,
    );
  const token = (await readFile(file, 'utf8')).trim();
  if (!token) throw new HeadbenchInputError(`--token-file ${file}: the file is empty`, file);
  return token;
}
