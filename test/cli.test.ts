import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The real `headbench` binary in a child process, as a user runs it.
const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'apps', 'trainer', 'bin', 'headbench.js');
const headbench = (args: string[], cwd: string) =>
  spawnSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', timeout: 280_000 });

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'headbench-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('headbench compare', () => {
  const args = [
    'compare',
    '--data',
    'generated:flowers3?perClass=10&size=36',
    '--backbone',
    'smallcnn',
    '--heads',
    'fc,gap',
    '--size',
    '32',
    '--epochs',
    '2',
    '--seeds',
    '1',
    '--lr',
    '1e-3',
    '--backend',
    'wasm',
    '--cam-samples',
    '2',
    '--out',
    'out',
  ];

  it('trains every head, writes the report, and keeps finished runs on a re-run', async () => {
    const first = headbench(args, tmp);
    expect(first.status, first.stderr).toBe(0);
    const results = JSON.parse(await readFile(join(tmp, 'out', 'results.json'), 'utf8'));
    expect(results.map((r: { config: { head: string } }) => r.config.head)).toEqual(['fc', 'gap']);
    expect(
      results.every(
        (r: { status: string; epochs: unknown[] }) => r.status === 'succeeded' && r.epochs.length === 2,
      ),
    ).toBe(true);
    const report = await readFile(join(tmp, 'out', 'report.md'), 'utf8');
    expect(report).toMatch(/\| fc \|/);
    expect(report).toMatch(/\| gap \|/);
    expect(report).toMatch(/\*\*Verdict:\*\*/);
    for (const f of ['metrics.csv', 'figures/smallcnn_val_accuracy.png', 'figures/smallcnn_val_loss.png']) {
      expect((await stat(join(tmp, 'out', f))).size).toBeGreaterThan(0);
    }
    const csv = (await readFile(join(tmp, 'out', 'metrics.csv'), 'utf8')).trim().split('\n');
    expect(csv.length).toBe(1 + 2 * 2);

    const again = headbench(args, tmp);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/already done, kept/);
  });

  it('rejects bad flags and unknown names, naming the flag and the valid values', () => {
    const unknown = headbench(['compare', '--heads', 'fc,gapp'], tmp);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(
      /--heads: unknown value 'gapp' \(valid: fc, gap, gmp, avgmax, catavgmax, gem, nin\)/,
    );
    const flag = headbench(['compare', '--epoch', '3'], tmp);
    expect(flag.status).toBe(2);
    expect(flag.stderr).toMatch(/--epoch.*valid flags: .*--epochs/);
    const num = headbench(['compare', '--lr', 'fast'], tmp);
    expect(num.stderr).toMatch(/--lr: 'fast' is not a number/);
    const data = headbench(['compare', '--data', join(tmp, 'missing-folder'), '--epochs', '1'], tmp);
    expect(data.status).toBe(2);
    expect(data.stderr).toMatch(/dataset folder does not exist: .*missing-folder/);
  });
});
