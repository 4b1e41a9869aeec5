// `headbench-trainer`: the fleet worker's command line.
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readEnv } from '@headbench/spec';
import { readTokenFile } from '../token-file.js';
import { childMain } from './child.js';
import { Trainer } from './trainer.js';
import { watchdogLimits } from './watchdog.js';

export const TRAINER_HELP = `headbench-trainer — pull runs from a headbench API and train them

Usage: HEADBENCH_TOKEN=<trainer token> headbench-trainer --api <url> [flags]
       headbench-trainer --api <url> --token-file <file> [flags]

  --api <url>          API base URL (env HEADBENCH_API); several instances of one API: repeat the flag
                       or separate URLs with commas, and the trainer moves to the next one when the one
                       it talks to stops answering
  --token-file <file>  file holding the trainer token, readable by its owner only (chmod 600)
                       (env HEADBENCH_TOKEN_FILE); or the token itself in env HEADBENCH_TOKEN.
                       Tokens are never taken from the command line: every user of the machine can read it.
                       Older APIs only: a member token in env HEADBENCH_READ_TOKEN to read models and datasets.
  --data-root <dir>    a folder local datasets and weights may be read from (repeatable; env
                       HEADBENCH_DATA_ROOTS, ':'-separated). Always allowed: the work dir and the caches
  --allow-host <host>  a host (host or host:port) datasets and weights may be downloaded from (repeatable;
                       env HEADBENCH_ALLOW_HOSTS, comma-separated). The API's own hosts are always allowed
  --name <name>        stable trainer name (default: host name)
  --slots <n>          runs trained at once, one child process each (default: one per core)
  --backend <b>        auto | tensorflow | wasm (default auto: tfjs-node-gpu, tfjs-node, else wasm)
  --work-dir <dir>     run folders, outbox journals, fetched models (default .headbench/trainer/<name>)
  --home <dir>         generated datasets, downloads, feature cache (default .headbench)
  --poll <ms>          lease poll period when no push arrives (default 2000)
  --watchdog-factor <k>     kill a child after k × its median batch time without a batch (default 20,
                            env HEADBENCH_WATCHDOG_FACTOR) ...
  --watchdog-floor <s>      ... but never before s seconds (default 120, env HEADBENCH_WATCHDOG_FLOOR_S)
  --watchdog-ceiling <s>    ... and always after s seconds, the limit outside training too (default 1800,
                            env HEADBENCH_WATCHDOG_CEILING_S); the run is handed back as retryable and
                            resumes from its last checkpoint

Each slot's child trains with (cores / slots) wasm threads, at least one (HEADBENCH_WASM_THREADS overrides).

Signals: SIGTERM finishes each run's current epoch, uploads its checkpoint and hands the run back;
SIGINT (Ctrl-C) stops at the next batch and hands runs back (they resume from their last checkpoint);
a second signal exits at once.`;

export async function trainerMain(argv: string[]): Promise<number> {
  if (argv[0] === '--child') {
    childMain();
    return new Promise<number>(() => {}); // the child exits itself
  }
  const inArgv = argv.find((a) => /^--(read-)?token(=|$)/.test(a));
  if (inArgv) {
    console.error(
      `headbench-trainer: ${inArgv.split('=')[0]} is no longer accepted: a token on the command line is readable by every user of this machine (/proc/<pid>/cmdline). Put it in env HEADBENCH_TOKEN, or in a file only you can read and pass --token-file <file>.`,
    );
    return 2;
  }
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      api: { type: 'string', multiple: true },
      'token-file': { type: 'string' },
      'data-root': { type: 'string', multiple: true },
      'allow-host': { type: 'string', multiple: true },
      name: { type: 'string' },
      slots: { type: 'string' },
      backend: { type: 'string' },
      'work-dir': { type: 'string' },
      home: { type: 'string' },
      poll: { type: 'string' },
      'watchdog-factor': { type: 'string' },
      'watchdog-floor': { type: 'string' },
      'watchdog-ceiling': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(TRAINER_HELP);
    return 0;
  }
  const env = readEnv(process.env, (m) => console.error(`headbench-trainer: ${m}`));
  const api = values.api?.flatMap((a) => a.split(',')).filter(Boolean) ?? env.HEADBENCH_API;
  let token: string | undefined;
  try {
    const file = values['token-file'] ?? env.HEADBENCH_TOKEN_FILE;
    token = file ? await readTokenFile(file) : env.HEADBENCH_TOKEN;
  } catch (e) {
    console.error(`headbench-trainer: ${(e as Error).message}`);
    return 2;
  }
  if (!api?.length || !token) {
    console.error(
      `headbench-trainer: --api and a token (env HEADBENCH_TOKEN, or --token-file) are required\n\n${TRAINER_HELP}`,
    );
    return 2;
  }
  for (const u of Array.isArray(api) ? api : [api]) {
    if (!/^https?:\/\/[^\s/]+/.test(u)) {
      console.error(`headbench-trainer: --api: '${u.slice(0, 200)}' is not an http(s) URL`);
      return 2;
    }
  }
  const allowHosts = [...(values['allow-host'] ?? []), ...(env.HEADBENCH_ALLOW_HOSTS?.split(',') ?? [])];
  for (const h of allowHosts) {
    if (!/^[\w.-]+(:\d{1,5})?$|^\[[\da-f:.]+\](:\d{1,5})?$/i.test(h)) {
      console.error(
        `headbench-trainer: --allow-host: '${h}' must be a host name or address, optionally with :port`,
      );
      return 2;
    }
  }
  const backend = (values.backend ?? 'auto') as 'auto' | 'tensorflow' | 'wasm';
  if (!['auto', 'tensorflow', 'wasm', 'cpu'].includes(backend)) {
    console.error(`headbench-trainer: --backend: unknown '${backend}' (valid: auto, tensorflow, wasm)`);
    return 2;
  }
  const slots = Number(values.slots ?? availableParallelism());
  if (!Number.isInteger(slots) || slots < 1 || slots > 64) {
    console.error(`headbench-trainer: --slots: '${values.slots}' must be an integer in [1, 64]`);
    return 2;
  }
  // The flags go through the same checks as the variables they override.
  const flagged: Record<string, string> = {};
  for (const [flag, variable] of [
    ['watchdog-factor', 'HEADBENCH_WATCHDOG_FACTOR'],
    ['watchdog-floor', 'HEADBENCH_WATCHDOG_FLOOR_S'],
    ['watchdog-ceiling', 'HEADBENCH_WATCHDOG_CEILING_S'],
  ] as const) {
    const value = values[flag];
    if (value !== undefined) flagged[variable] = value;
  }
  let watchdog: ReturnType<typeof watchdogLimits>;
  try {
    watchdog = watchdogLimits(readEnv({ ...process.env, ...flagged }));
  } catch (e) {
    console.error(`headbench-trainer: --watchdog-*: ${(e as Error).message}`);
    return 2;
  }
  const name = values.name ?? hostname();
  const home = resolve(values.home ?? env.HEADBENCH_HOME ?? '.headbench');
  const trainer = new Trainer({
    api,
    token,
    readToken: env.HEADBENCH_READ_TOKEN,
    dataRoots: [
      ...(values['data-root'] ?? []),
      ...(env.HEADBENCH_DATA_ROOTS?.split(':').filter(Boolean) ?? []),
    ],
    allowHosts,
    maxDownloadBytes: env.HEADBENCH_MAX_DOWNLOAD_BYTES,
    maxUnpackedBytes: env.HEADBENCH_MAX_UNPACKED_BYTES,
    name,
    slots,
    backend,
    home,
    workDir: resolve(values['work-dir'] ?? join(home, 'trainer', name.replace(/[^\w.-]+/g, '_'))),
    pollMs: values.poll ? Number(values.poll) : undefined,
    noop: env.HEADBENCH_TRAINER_NOOP,
    childThreads: env.HEADBENCH_WASM_THREADS,
    watchdog,
  });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      trainer.log(`${sig} again: exiting now`);
      for (const t of trainer.tasks.values()) t.kill();
      process.exit(130);
    }
    // Ctrl-C should be quick: if the API is gone too, the unsent hand-back is left to lease expiry.
    const graceful = sig === 'SIGTERM';
    void trainer
      .stop(graceful ? 'graceful' : 'abort', graceful ? 300_000 : 15_000)
      .then(() => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Started by the launcher with an IPC channel: when it goes away, hand the runs back and exit.
  if (process.connected) process.on('disconnect', () => onSignal('SIGINT'));
  await trainer.start();
  return new Promise<number>(() => {}); // runs until a signal
}
