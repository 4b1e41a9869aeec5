// `headbench submit`: sends a sweep spec file to a headbench API, where its trainers run it.
import { createHeadbenchClient } from '@headbench/client';
import { HeadbenchInputError } from '@headbench/core';
import { readEnv } from '@headbench/spec';
import { TRPCClientError } from '@trpc/client';
import { parseFlags } from './flags.js';
import { readSpecFile } from './spec-file.js';
import { readTokenFile } from './token-file.js';

export const SUBMIT_HELP = `headbench submit — send a sweep spec file to a headbench API

Usage: headbench submit <spec.yaml|spec.json> --api <url> [--token-file <file>] [--json]

  --api <url>          the API (env HEADBENCH_API)
  --token-file <file>  a file holding a member or admin token (mode 0600; refused when others can read it);
                       default env HEADBENCH_TOKEN.
                       Tokens are never taken on the command line (other users can read it in ps).
  --json               print { id, runs, runIds } on stdout

The spec is checked here first, with the same rules and messages as the API and 'headbench compare --spec'.`;

async function tokenFrom(file: string | undefined): Promise<string> {
  if (file) return readTokenFile(file);
  const token = readEnv(process.env).HEADBENCH_TOKEN?.trim();
  if (!token)
    throw new HeadbenchInputError('submit: no token: set HEADBENCH_TOKEN or pass --token-file <file>');
  return token;
}

export async function submitMain(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('submit', args, {
    api: { type: 'string' },
    'token-file': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length !== 1)
    throw new HeadbenchInputError(`submit: give one spec file (got ${positionals.length}); see --help`);
  const api = values.api ?? readEnv(process.env, (m) => console.error(`headbench: ${m}`)).HEADBENCH_API;
  if (!api) throw new HeadbenchInputError('submit: --api <url> is required (or env HEADBENCH_API)');
  const spec = await readSpecFile(positionals[0]);
  const client = createHeadbenchClient({
    url: api,
    token: await tokenFrom(values['token-file']),
    batch: false,
  });
  try {
    const out = await client.sweeps.create.mutate(spec);
    if (values.json) console.log(JSON.stringify(out, null, 2));
    else console.log(`sweep ${out.id}: ${out.runs} runs queued on ${api}`);
    return 0;
  } catch (e) {
    if (e instanceof TRPCClientError) {
      const status = (e.data as { httpStatus?: number } | undefined)?.httpStatus;
      throw new HeadbenchInputError(
        `submit: the API refused the sweep${status ? ` (${status})` : ''}: ${e.message}`,
      );
    }
    throw e;
  }
}
