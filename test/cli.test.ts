import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
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
    expect(unknown.stderr).toMatch(/--heads: 'gapp' is not one of fc, gap, gmp, avgmax, catavgmax, gem, nin/);
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

describe('headbench compare with packaged pretrained weights', () => {
  it('--preset sets the reference protocol, prints what it set, and the flags given win', () => {
    const r = headbench(
      ['compare', '--preset', 'keras-gap-vs-fc-mobilenet', '--trainable', 'frozen', '--dry-run', '--json'],
      tmp,
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('preset keras-gap-vs-fc-mobilenet:');
    expect(r.stderr).toContain(
      'sets --backbone mobilenetv2 --weights npm:nsfwjs/mobilenet_v2 --size 224 --heads fc,gap,gmp,nin --optimizer rmsprop --lr 0.0001 --decay 0.000001 --batch 32 --epochs 50 --split 7:1 --seeds 0,1,2',
    );
    expect(r.stderr).toContain('your flags win: --trainable frozen');
    const runs = (JSON.parse(r.stdout) as { runs: { config: Record<string, unknown> }[] }).runs;
    expect(runs).toHaveLength(12);
    for (const { config } of runs)
      expect(config).toMatchObject({
        backbone: 'mobilenetv2',
        weights: 'npm:nsfwjs/mobilenet_v2',
        size: 224,
        trainable: 'frozen',
        optimizer: 'rmsprop',
        lr: 1e-4,
        decay: 1e-6,
        batchSize: 32,
        epochs: 50,
        split: '7:1',
      });
    const unknown = headbench(['compare', '--preset', 'gap-vs-fc'], tmp);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain(
      "--preset: unknown preset 'gap-vs-fc' (valid: keras-gap-vs-fc, keras-gap-vs-fc-mobilenet)",
    );
    const mismatch = headbench(
      ['compare', '--weights', 'npm:nsfwjs/mobilenet_v2', '--backbone', 'inceptionv3', '--dry-run'],
      tmp,
    );
    expect(mismatch.status).toBe(2);
    expect(mismatch.stderr).toContain(
      'npm:nsfwjs/mobilenet_v2 holds mobilenetv2 weights; the backbone is inceptionv3',
    );
  });

  it('trains frozen heads on cached features of npm:nsfwjs/mobilenet_v2 and names the weights in the report', async () => {
    const r = headbench(
      [
        'compare',
        '--data',
        'generated:flowers3?perClass=8&size=32',
        '--backbone',
        'mobilenetv2',
        '--weights',
        'npm:nsfwjs/mobilenet_v2',
        '--trainable',
        'frozen',
        '--heads',
        'gap,gmp',
        '--size',
        '32',
        '--epochs',
        '1',
        '--seeds',
        '2',
        '--backend',
        'wasm',
        '--cam-samples',
        '0',
        '--out',
        'pretrained',
      ],
      tmp,
    );
    expect(r.status, r.stderr).toBe(0);
    const results = JSON.parse(await readFile(join(tmp, 'pretrained', 'results.json'), 'utf8')) as {
      provenance: { featureCache: string; weights: { package: { sha256: string; version: string } } };
    }[];
    expect(results).toHaveLength(4);
    const sha = results[0].provenance.weights.package.sha256;
    for (const res of results) {
      expect(res.provenance.featureCache).toBe('cached');
      expect(res.provenance.weights.package).toMatchObject({ version: '4.4.0', sha256: sha });
    }
    const report = await readFile(join(tmp, 'pretrained', 'report.md'), 'utf8');
    expect(report).toContain(
      `**Weights:** \`npm:nsfwjs/mobilenet_v2\` — nsfwjs@4.4.0 \`mobilenet_v2\`, weight bytes sha256 ${sha}`,
    );
    expect(report).toContain('fine-tuned by the package');
  });
});

describe('headbench, as a command line', () => {
  it('prints its version and every help without doing anything else', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'headbench-help-'));
    try {
      const version = headbench(['--version'], empty);
      expect(version.status).toBe(0);
      expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
      for (const [args, title] of [
        [['--help'], /^headbench \S+ — compare CNN classification heads/],
        [['compare', '--help'], /^headbench compare — /],
        [['submit', '--help'], /^headbench submit — /],
        [['dataset', '--help'], /^headbench dataset — /],
        [['start', '--help'], /^headbench start — /],
      ] as const) {
        const r = headbench([...args], empty);
        expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toMatch(title);
      }
      // No state folder, no database, no dashboard build: nothing was started.
      expect(await readdir(empty)).toEqual([]);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('describes a dataset as JSON', () => {
    const r = headbench(['dataset', 'generated:flowers3?perClass=2&size=20', '--json'], tmp);
    expect(r.status, r.stderr).toBe(0);
    const ds = JSON.parse(r.stdout);
    expect(ds.images).toBe(6);
    expect(ds.classes.map((c: { images: number }) => c.images)).toEqual([2, 2, 2]);
    expect(ds.contentHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('exits 1 with a summary when a run fails, and reports it in --json', async () => {
    // Weights whose kernel has the wrong shape: the run starts, then fails (not an input error of the flags).
    const model = join(tmp, 'bad-model');
    await mkdir(model, { recursive: true });
    await writeFile(
      join(model, 'model.json'),
      JSON.stringify({
        modelTopology: { class_name: 'Model' },
        weightsManifest: [
          { paths: ['w.bin'], weights: [{ name: 'block1_conv/kernel', shape: [1], dtype: 'float32' }] },
        ],
      }),
    );
    await writeFile(join(model, 'w.bin'), Buffer.alloc(4));
    const r = headbench(
      [
        'compare',
        '--data',
        'generated:flowers3?perClass=4&size=20',
        '--heads',
        'gap',
        '--size',
        '16',
        '--epochs',
        '1',
        '--seeds',
        '1',
        '--weights',
        model,
        '--backend',
        'wasm',
        '--quiet',
        '--json',
        '--out',
        'failing',
      ],
      tmp,
    );
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /headbench: 1 of 1 runs failed:\n {2}smallcnn-gap-s0-\w+: loadWeightsByName: layer 'block1_conv' weight 'kernel' expected shape \[3,3,3,32\], found \[1\]/,
    );
    const out = JSON.parse(r.stdout);
    expect(out.runs).toEqual([
      expect.objectContaining({
        status: 'failed',
        head: 'gap',
        error: expect.stringMatching(/expected shape/),
      }),
    ]);
  });
});
