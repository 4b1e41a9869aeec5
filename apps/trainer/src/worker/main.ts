// `headbench-trainer`: the fleet worker's command line.
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { readEnv } from '@headbench/spec';
import { childMain } from './child.js';
import { Trainer } from './trainer.js';

export const TRAINER_HELP = `headbench-trainer — pull runs from a headbench API and train them

Usage: headbench-trainer --api <url> --token <trainer token> [flags]

  --api <url>          API base URL (env HEADBENCH_API); several instances of one API: repeat the flag
                       or separate URLs with commas, and the trainer moves to the next one when the one
                       it talks to stops answering
  --token <token>      trainer token (env HEADBENCH_TOKEN)
  --read-token <tok>   not needed with current APIs (leases carry what a run reads); only for older
                       APIs: a member token to read models and the dataset registry (env HEADBENCH_READ_TOKEN)
  --name <name>        stable trainer name (default: host name)
  --slots <n>          runs trained at once, one child process each (default: one per core)
  --backend <b>        auto | tensorflow | wasm (default auto: tfjs-node-gpu, tfjs-node, else wasm)
  --work-dir <dir>     run folders, outbox journals, fetched models (default .headbench/trainer/<name>)
  --home <dir>         generated datasets, downloads, feature cache (default .headbench)
  --poll <ms>          lease poll period when no push arrives (default 2000)

Signals: SIGTERM finishes each run's current epoch, uploads its checkpoint and hands the run back;
SIGINT (Ctrl-C) stops at the next batch and hands runs back (they resume from their last checkpoint);
a second signal exits at once.`;

export async function trainerMain(argv: string[]): Promise<number> {
  if (argv[0] === '--child') {
    childMain();
    return new Promise<number>(() => {}); // the child exits itself
  }
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      api: { type: 'string', multiple: true },
      token: { type: 'string' },
      'read-token': { type: 'string' },
      name: { type: 'string' },
      slots: { type: 'string' },
      backend: { type: 'string' },
      'work-dir': { type: 'string' },
      home: { type: 'string' },
      poll: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(TRAINER_HELP);
    return 0;
  }
  const env = readEnv(process.env, (m) => console.error(`headbench-trainer: ${m}`));
  const api = values.api?.flatMap((a) => a.split(',')).filter(Boolean) ?? env.HEADBENCH_API;
  const token = values.token ?? env.HEADBENCH_TOKEN;
  if (!api?.length || !token) {
    console.error(`headbench-trainer: --api and --token are required\n\n${TRAINER_HELP}`);
    return 2;
  }
  for (const u of Array.isArray(api) ? api : [api]) {
    if (!/^https?:\/\/[^\s/]+/.test(u)) {
      console.error(`headbench-trainer: --api: '${u.slice(0, 200)}' is not an http(s) URL`);
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
  const name = values.name ?? hostname();
  const home = resolve(values.home ?? env.HEADBENCH_HOME ?? '.headbench');
  const trainer = new Trainer({
    api,
    token,
    readToken: values['read-token'] ?? env.HEADBENCH_READ_TOKEN,
    name,
    slots,
    backend,
    home,
    workDir: resolve(values['work-dir'] ?? join(home, 'trainer', name.replace(/[^\w.-]+/g, '_'))),
    pollMs: values.poll ? Number(values.poll) : undefined,
    noop: env.HEADBENCH_TRAINER_NOOP,
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
