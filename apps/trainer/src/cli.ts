// `headbench`: the command line. Every command answers --help without doing anything else.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HeadbenchInputError, openDataset, type RunResult, splitDataset } from '@headbench/core';
import { runCompare } from './compare.js';
import { COMPARE_HELP, type ComparePlan, parseCompareArgs, presetSummary } from './compare-plan.js';
import { parseFlags } from './flags.js';
import { SUBMIT_HELP, submitMain } from './submit.js';

export const VERSION: string = JSON.parse(
  readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8'),
).version;

const USAGE = `headbench ${VERSION} — compare CNN classification heads (FC vs GAP vs GMP ...)

Usage:
  headbench compare [flags]        Train backbones × heads × seeds here; write results.json, metrics.csv,
                                   figures and report.md. --spec sweep.yaml runs a spec file.
  headbench submit <spec> --api U  Send a spec file to a headbench API; its trainers run it.
  headbench dataset <uri>          Open a dataset: classes, counts, split, hash and skipped files.
  headbench start                  The platform on this machine: API, dashboard, a local trainer and
                                   the default sweep. More machines join with headbench-trainer.
  headbench --version

Run 'headbench <command> --help' for its flags.

Dataset URIs: a class-folder path, idx:<images>,<labels>, generated:flowers17[?seed=0&size=224&perClass=80]`;

const DATASET_HELP = `headbench dataset — open a dataset and describe it

Usage: headbench dataset <uri> [--json]

  <uri>     a class-folder path | idx:<images>,<labels> | generated:flowers17[?seed=&size=&perClass=]
  --json    print the description as JSON on stdout
  --home    state folder for generated datasets (default .headbench)`;

const START_HELP = `headbench start — the whole platform on this machine

Usage: headbench start

Starts the embedded Postgres (or DATABASE_URL), the API, the dashboard (production build, made once) and
a local trainer, prints the URLs and where the admin token is, and submits the default sweep once.
Ctrl-C stops everything; the next start continues. Settings come from the environment (see README,
"Environment").`;

const wantsHelp = (args: string[]) => args.includes('--help') || args.includes('-h');

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'dataset':
        if (wantsHelp(rest)) return print(DATASET_HELP);
        return await datasetMain(rest);
      case 'compare': {
        const plan = await parseCompareArgs(rest);
        if (plan === 'help') return print(COMPARE_HELP);
        return await compareMain(plan);
      }
      case 'submit':
        if (wantsHelp(rest)) return print(SUBMIT_HELP);
        return await submitMain(rest);
      case 'start': {
        if (wantsHelp(rest)) return print(START_HELP);
        // The all-in-one platform (API, dashboard, local trainer, default sweep) lives in apps/launcher.
        const bin = fileURLToPath(new URL('../../launcher/bin/headbench-start.js', import.meta.url));
        const child = spawn(process.execPath, [bin, ...rest], { stdio: 'inherit' });
        // Ctrl-C reaches the launcher through the terminal; a plain `kill` of this process is passed on.
        const forward = (sig: NodeJS.Signals) => child.kill(sig);
        process.on('SIGTERM', forward);
        process.on('SIGINT', () => {});
        return await new Promise<number>((res) => child.on('exit', (code) => res(code ?? 1)));
      }
      case '--version':
      case '-v':
      case 'version':
        return print(VERSION);
      case undefined:
        console.error(USAGE);
        return 2;
      case '--help':
      case '-h':
      case 'help':
        return print(USAGE);
      default:
        throw new HeadbenchInputError(
          `unknown command '${command}' (valid: compare, submit, dataset, start)`,
        );
    }
  } catch (err) {
    if (err instanceof HeadbenchInputError || err instanceof RangeError) {
      console.error(`headbench: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

function print(text: string): number {
  console.log(text);
  return 0;
}

/** Trains the plan; 1 when any run failed, with a summary of the failures. */
async function compareMain(plan: ComparePlan): Promise<number> {
  // On stderr: stdout stays the plan or the JSON outcome.
  if (plan.preset) console.error(presetSummary(plan.preset));
  if (plan.dryRun) {
    if (plan.json) console.log(JSON.stringify({ runs: plan.runs }, null, 2));
    else for (const r of plan.runs) console.log(`${r.id}  ${r.hash}  ${JSON.stringify(r.config)}`);
    return 0;
  }
  const results = await runCompare(plan);
  const failed = results.filter((r) => r.status !== 'succeeded');
  if (plan.json) console.log(JSON.stringify(compareSummary(plan, results), null, 2));
  else console.error(`report: ${plan.out}/report.md`);
  if (failed.length === 0) return 0;
  console.error(`headbench: ${failed.length} of ${results.length} runs failed:`);
  for (const r of failed) console.error(`  ${r.id}: ${r.error ?? r.status}`);
  return 1;
}

function compareSummary(plan: ComparePlan, results: RunResult[]) {
  const hashes = new Map(plan.runs.map((r) => [r.id, r.hash]));
  return {
    out: plan.out,
    report: `${plan.out}/report.md`,
    runs: results.map((r) => ({
      id: r.id,
      hash: hashes.get(r.id),
      status: r.status,
      backbone: r.config.backbone,
      head: r.config.head,
      seed: r.config.seed,
      selectedEpoch: r.summary?.selected_epoch ?? null,
      valAccuracy: r.summary?.val_accuracy ?? null,
      testAccuracy: r.summary?.test_accuracy ?? null,
      error: r.error ?? null,
    })),
  };
}

async function datasetMain(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags('dataset', args, {
    json: { type: 'boolean' },
    home: { type: 'string', default: '.headbench' },
  });
  if (positionals.length !== 1)
    throw new HeadbenchInputError(`dataset: give one dataset URI (got ${positionals.length}); see --help`);
  const started = Date.now();
  const ds = await openDataset(positionals[0], { cacheDir: `${values.home}/datasets` });
  const split = splitDataset(ds);
  const counts = ds.classes.map((_, c) => ds.labels.filter((l) => l === c).length);
  if (values.json) {
    console.log(
      JSON.stringify(
        {
          name: ds.name,
          uri: ds.uri,
          images: ds.size,
          contentHash: ds.contentHash,
          classes: ds.classes.map((name, i) => ({ name, images: counts[i] })),
          train: split.train.length,
          test: split.test.length,
          skipped: ds.skipped,
        },
        null,
        2,
      ),
    );
    return 0;
  }
  console.log(`dataset ${ds.name} (${ds.uri})`);
  console.log(
    `  ${ds.size} images, ${ds.classes.length} classes, train ${split.train.length} / val ${split.val.length} / test ${split.test.length} (default split)`,
  );
  console.log(`  content hash ${ds.contentHash}`);
  for (const [i, c] of ds.classes.entries())
    console.log(`  ${String(i).padStart(3)} ${c.padEnd(24)} ${counts[i]}`);
  if (ds.skipped.length) {
    console.log(`  skipped ${ds.skipped.length} file(s):`);
    for (const s of ds.skipped) console.log(`    ${s.path}: ${s.reason}`);
  }
  console.log(`  opened in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}
