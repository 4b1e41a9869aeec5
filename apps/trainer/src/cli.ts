import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { HeadbenchInputError, openDataset, splitDataset } from '@headbench/core';
import { COMPARE_HELP, parseCompareArgs, runCompare } from './compare.js';

const USAGE = `headbench — compare CNN classification heads (FC vs GAP vs GMP ...)

Usage:
  headbench compare [flags]   Train backbones × heads × seeds, write results.json, metrics.csv, figures and report.md.
  headbench dataset <uri>     Open a dataset and print its classes, counts, split, hash and skipped files.
  headbench start             The platform on this machine: API, dashboard, a local trainer and the default sweep.

Run 'headbench compare --help' for every flag.

Dataset URIs: a class-folder path, idx:<images>,<labels>, generated:flowers17[?seed=0&size=224&perClass=80]`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'dataset':
        if (!rest[0]) throw new HeadbenchInputError('dataset: missing <uri>');
        await describeDataset(rest[0]);
        return 0;
      case 'compare': {
        const plan = parseCompareArgs(rest);
        if (plan === 'help') {
          console.log(COMPARE_HELP);
          return 0;
        }
        await runCompare(plan);
        console.log(`report: ${plan.out}/report.md`);
        return 0;
      }
      case 'start': {
        // The all-in-one platform (API, dashboard, local trainer, default sweep) lives in apps/launcher.
        const bin = fileURLToPath(new URL('../../launcher/bin/headbench-start.js', import.meta.url));
        const child = spawn(process.execPath, [bin, ...rest], { stdio: 'inherit' });
        // Ctrl-C reaches the launcher through the terminal; a plain `kill` of this process is passed on.
        const forward = (sig: NodeJS.Signals) => child.kill(sig);
        process.on('SIGTERM', forward);
        process.on('SIGINT', () => {});
        return await new Promise<number>((res) => child.on('exit', (code) => res(code ?? 1)));
      }
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        console.log(USAGE);
        return command === undefined ? 1 : 0;
      default:
        throw new HeadbenchInputError(`unknown command '${command}' (valid: compare, dataset, start)`);
    }
  } catch (err) {
    if (err instanceof HeadbenchInputError || err instanceof RangeError) {
      console.error(`headbench: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

async function describeDataset(uri: string): Promise<void> {
  const started = Date.now();
  const ds = await openDataset(uri);
  const split = splitDataset(ds);
  const counts = ds.classes.map((_, c) => ds.labels.filter((l) => l === c).length);
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
}
