// `npm start` smoke test: the launcher with no configuration (embedded Postgres in a fresh home) stores
// its first metrics, stops cleanly on SIGINT, and a second start keeps the data and the sweeps.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { client, Proc, ROOT, waitFor } from './harness.js';

const launcher = (home: string) => {
  const env: Record<string, string | undefined> = {
    ...process.env,
    HEADBENCH_HOME: home,
    PORT: '0',
    HEADBENCH_NO_WEB: '1',
    HEADBENCH_TRAINER_SLOTS: '1',
  };
  delete env.DATABASE_URL; // the no-configuration path: embedded Postgres
  return new Proc(
    'start',
    spawn(process.execPath, [join(ROOT, 'apps', 'launcher', 'bin', 'headbench-start.js')], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
};

describe('npm start', () => {
  let home: string;
  const procs: Proc[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('starts the platform, trains the default sweep, stops on SIGINT and keeps the data', async () => {
    home = await mkdtemp(join(tmpdir(), 'headbench-start-'));
    const first = launcher(home);
    procs.push(first);
    const line = await first.waitForLine(/^\s+API\s+http/, 120_000);
    const url = /(http:\/\/[\d.:]+)/.exec(line)![1];
    const adminToken = (await readFile(join(home, 'admin-token'), 'utf8')).trim();
    const admin = client(url, adminToken);
    await first.waitForLine(/submitted 'default: smallcnn from scratch' \(9 runs\)/, 60_000);
    await first.waitForLine(
      /submitted 'default: mobilenetv2 pretrained \(npm:nsfwjs\/mobilenet_v2, frozen\)' \(9 runs\)/,
      60_000,
    );
    // Created now: shown this once, with where it is kept.
    expect(first.text()).toMatch(
      new RegExp(`admin token ${adminToken} +\\(created now, shown only this once`),
    );
    const running = await waitFor(
      async () => (await admin.runs.list.query({ status: 'running' }))[0],
      120_000,
      'a running default run',
      500,
    );
    await waitFor(
      async () => {
        const m = await admin.runs.metrics.query({ runId: running.id, names: ['batch/loss'] });
        return (m as Record<string, unknown[]>)['batch/loss']?.length > 0;
      },
      180_000,
      'first stored metrics',
      500,
    );
    first.child.kill('SIGINT');
    const exit = await Promise.race([
      first.exited,
      new Promise<null>((r) => setTimeout(() => r(null), 90_000)),
    ]);
    expect(exit, first.text()).toEqual({ code: 0, signal: null });
    expect(first.text()).toMatch(/stopped; data kept/);

    const second = launcher(home);
    procs.push(second);
    await second.waitForLine(/default sweeps already submitted/, 120_000);
    // Later starts say where the admin token is, never the token: logs of every start are not a secret.
    expect(second.text()).toMatch(/admin token in .*admin-token/);
    expect(second.text()).not.toContain(adminToken);
    // The local trainer got its token through the environment: no process's command line holds it.
    const trainerToken = JSON.parse(await readFile(join(home, 'launcher-tokens.json'), 'utf8')).trainer;
    const cmdlines = await Promise.all(
      (await readdir('/proc'))
        .filter((d) => /^\d+$/.test(d))
        .map((d) => readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '')),
    );
    expect(cmdlines.some((c) => c.includes('headbench-trainer'))).toBe(true);
    expect(cmdlines.filter((c) => c.includes(trainerToken))).toEqual([]);
    const url2 = /(http:\/\/[\d.:]+)/.exec(await second.waitForLine(/^\s+API\s+http/, 10_000))![1];
    const admin2 = client(url2, (await readFile(join(home, 'admin-token'), 'utf8')).trim());
    const sweeps = await admin2.sweeps.list.query();
    expect(sweeps.map((s) => s.name).sort()).toEqual([
      'default: mobilenetv2 pretrained (npm:nsfwjs/mobilenet_v2, frozen)',
      'default: smallcnn from scratch',
      'default: smallcnn pretrain (flowers17 seed 1)',
    ]);
    // The interrupted run was handed back (trainer.release) or, when the stop timed out, is still leased
    // until its lease expires: either way it is trained again, not lost.
    const again = await admin2.runs.get.query({ id: running.id });
    expect(['queued', 'running']).toContain(again.status);
    second.child.kill('SIGINT');
    expect((await second.exited).code).toBe(0);
  });
});
