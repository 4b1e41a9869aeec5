import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHeadbenchClient, runConfigHash } from '@headbench/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './support.js';
import { type ApiProcess, startApi } from './web/harness.js';

// One experiment file, two ways to run it: `headbench compare --spec` here, `headbench submit` to the fleet.
const bin = join(ROOT, 'apps', 'trainer', 'bin', 'headbench.js');
const headbench = (args: string[], cwd: string, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [bin, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, HEADBENCH_TOKEN: '', ...env },
  });

const SPEC = `# fc vs gap on a small generated set, two learning rates
name: spec-file test
datasets: ['generated:flowers3?perClass=10&size=36']
backbones: [smallcnn]
heads: [fc, gap]
optimizers: [adam]
lr: [0.001, 0.0003]
seeds: [0, 1]
trainable: all
epochs: 2
batchSize: 8
size: 32
augment: { horizontalFlip: true }
earlyStopping: { monitor: val_loss, patience: 3 }
`;

describe('a sweep spec file', () => {
  let dir: string;
  let api: ApiProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'headbench-spec-file-'));
    await writeFile(join(dir, 'sweep.yaml'), SPEC);
    await writeFile(join(dir, 'bad.yaml'), SPEC.replace('backbones: [smallcnn]', 'backbones: [inceptionv3]'));
    await writeFile(join(dir, 'token'), '', { mode: 0o600 });
    api = await startApi();
    await writeFile(join(dir, 'token'), api.adminToken, { mode: 0o600 });
  });
  afterAll(async () => {
    await api?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the same runs (config hashes) through compare --spec and submit', async () => {
    const plan = headbench(['compare', '--spec', 'sweep.yaml', '--dry-run', '--json'], dir);
    expect(plan.status, plan.stderr).toBe(0);
    const local = (JSON.parse(plan.stdout) as { runs: { hash: string }[] }).runs.map((r) => r.hash);
    expect(local).toHaveLength(8);

    const sent = headbench(
      ['submit', 'sweep.yaml', '--api', api.url, '--token-file', 'token', '--json'],
      dir,
    );
    expect(sent.status, sent.stderr).toBe(0);
    const { id, runs } = JSON.parse(sent.stdout) as { id: string; runs: number };
    expect(runs).toBe(8);
    const client = createHeadbenchClient({ url: api.url, token: api.adminToken });
    const stored = await client.runs.list.query({ sweepId: id });
    const fleet = stored.map((r) => runConfigHash(r.config as never));
    expect(fleet).toEqual(local);
    // The sweep's page offers the spec back: submitting it again gives the same runs.
    const sweep = await client.sweeps.get.query({ id });
    const again = await client.sweeps.create.mutate(sweep.spec);
    const rerun = await client.runs.list.query({ sweepId: again.id });
    expect(rerun.map((r) => runConfigHash(r.config as never))).toEqual(local);
  });

  it('answers a bad spec with the same message in both commands, before anything runs', () => {
    const local = headbench(['compare', '--spec', 'bad.yaml', '--dry-run'], dir);
    const sent = headbench(['submit', 'bad.yaml', '--api', api.url], dir, {
      HEADBENCH_TOKEN: api.adminToken,
    });
    const line = 'size: inceptionv3 needs inputs of at least 75x75 pixels (got 32)';
    expect(local.status).toBe(2);
    expect(sent.status).toBe(2);
    expect(local.stderr).toContain(`bad.yaml: invalid sweep spec:\n  ${line}`);
    expect(sent.stderr).toContain(`bad.yaml: invalid sweep spec:\n  ${line}`);
    // The API answers the same line when a client skips the local check.
    expect(local.stderr).not.toMatch(/api/i);
  });

  it('takes the token from HEADBENCH_TOKEN or a file, never from the command line', () => {
    const none = headbench(['submit', 'sweep.yaml', '--api', api.url], dir);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/no token: set HEADBENCH_TOKEN or pass --token-file <file>/);
    const argv = headbench(['submit', 'sweep.yaml', '--api', api.url, '--token', api.adminToken], dir);
    expect(argv.status).not.toBe(0);
    expect(argv.stderr).toMatch(/--token/);
    // A token file others can read is refused, not used.
    const open = join(dir, 'open-token');
    writeFileSync(open, api.adminToken, { mode: 0o644 });
    chmodSync(open, 0o644);
    const loose = headbench(['submit', 'sweep.yaml', '--api', api.url, '--token-file', open], dir);
    expect(loose.status).toBe(2);
    expect(loose.stderr).toMatch(/group or others can read it \(mode 644\); run chmod 600/);
  });
});
