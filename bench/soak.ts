/**
 * Soak (issue #11): the default `npm start` sweeps (19 runs) N times in a row, each from a fresh
 * HEADBENCH_HOME (embedded Postgres, generated datasets, everything), until the launcher says "default
 * sweeps finished". Prints each wall time and whether every run succeeded; a soak that does not finish
 * within the limit counts as hung and is stopped.
 *   npx tsx bench/soak.ts [--times 5] [--limit-min 60] [--web] [--verbose]
 * --web builds and runs the dashboard too (as a plain `npm start` does; off by default, it only adds CPU
 * load). Long: about 6-15 minutes a soak on a 2-core machine. The launcher uses one trainer slot per core.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const times = arg('times', 5);
const limitMin = arg('limit-min', 60);
const web = process.argv.includes('--web');
const verbose = process.argv.includes('--verbose');
const LAUNCHER = fileURLToPath(new URL('../apps/launcher/bin/headbench-start.js', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FINISHED =
  /default sweeps finished, ([\d.]+) min after this start: (\d+) runs succeeded, (\d+) failed, (\d+) canceled/;

interface Soak {
  wallS: number;
  finished: boolean;
  succeeded: number;
  failed: number;
  canceled: number;
}

async function soak(i: number): Promise<Soak> {
  const home = await mkdtemp(join(tmpdir(), `headbench-soak-${i}-`));
  const env: Record<string, string | undefined> = {
    ...process.env,
    HEADBENCH_HOME: home,
    PORT: '0',
    HEADBENCH_NO_WEB: web ? '0' : '1',
  };
  delete env.DATABASE_URL; // a fresh start: the embedded Postgres in the fresh home
  const t0 = Date.now();
  const child = spawn(process.execPath, [LAUNCHER], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const out: Soak = { wallS: 0, finished: false, succeeded: 0, failed: 0, canceled: 0 };
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, limitMin * 60_000);
    let buffered = '';
    const onData = (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (verbose) console.log(`  [soak ${i}] ${line}`);
        const m = FINISHED.exec(line);
        if (m) {
          out.finished = true;
          [out.succeeded, out.failed, out.canceled] = m.slice(2).map(Number);
          clearTimeout(timer);
          resolve();
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  out.wallS = (Date.now() - t0) / 1000;
  child.kill('SIGINT');
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  await exited;
  clearTimeout(killer);
  await rm(home, { recursive: true, force: true });
  return out;
}

console.log(
  `soak: the default npm start sweeps ${times} time(s) from fresh state (limit ${limitMin} min each)`,
);
const results: Soak[] = [];
for (let i = 1; i <= times; i++) {
  const r = await soak(i);
  results.push(r);
  const total = r.succeeded + r.failed + r.canceled;
  console.log(
    r.finished
      ? `soak ${i}: ${(r.wallS / 60).toFixed(1)} min, ${r.succeeded}/${total} runs succeeded` +
          (r.failed || r.canceled ? ` (${r.failed} failed, ${r.canceled} canceled)` : '')
      : `soak ${i}: NOT FINISHED after ${(r.wallS / 60).toFixed(1)} min (hung or died; stopped)`,
  );
}
const ok = results.filter((r) => r.finished && r.failed === 0 && r.canceled === 0).length;
console.log(
  `\n${ok} of ${times} soaks finished with every run succeeded; wall times ${results
    .map((r) => `${(r.wallS / 60).toFixed(1)}`)
    .join(', ')} min`,
);
process.exitCode = ok === times ? 0 : 1;
