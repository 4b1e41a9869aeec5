import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, trpcRaw } from './helpers.js';

const API_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = join(API_DIR, '..', '..');

describe('the API process and the experiment spec', () => {
  let proc: ChildProcess;
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let home: string;
  let api: { url: string; token: string; loaded: string[] };

  beforeAll(async () => {
    db = await freshDatabase();
    home = await mkdtemp(join(tmpdir(), 'headbench-spec-'));
    proc = spawn(
      join(ROOT, 'node_modules', '.bin', 'tsx'),
      [join(API_DIR, 'test', 'support', 'api-process.ts')],
      {
        cwd: API_DIR,
        env: { ...process.env, DATABASE_URL: db.url, HEADBENCH_HOME: home, HOST: '127.0.0.1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    proc.stderr?.on('data', (d) => (stderr += d));
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code) => reject(new Error(`API process exited (${code}):\n${stderr}`))),
    );
    const firstLine = new Promise<string>((resolve) =>
      createInterface({ input: proc.stdout! }).once('line', resolve),
    );
    api = JSON.parse(await Promise.race([firstLine, exited]));
  });

  afterAll(async () => {
    if (proc?.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    await db?.drop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('runs without TensorFlow.js, sharp or @headbench/core', async () => {
    // The probe sees CommonJS packages loaded through ESM imports (pg, Prisma's runtime are such)...
    expect(api.loaded.some((m) => m.includes(`${join('node_modules', 'pg')}${'/'}`))).toBe(true);
    // ...and none of the training stack.
    expect(
      api.loaded.filter((m) => /@tensorflow|[\\/]sharp[\\/]|packages[\\/](core|engine)[\\/]/.test(m)),
    ).toEqual([]);
    const pkg = JSON.parse(await readFile(join(API_DIR, 'package.json'), 'utf8'));
    expect(Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })).not.toContain('@headbench/core');
  });

  it('answers 400 naming the field for sweeps a trainer would fail, and stores nothing', async () => {
    const sweep = {
      name: 'bad',
      datasets: ['generated:flowers17'],
      heads: ['gap'],
      optimizers: ['adam'],
      epochs: 1,
      batchSize: 8,
      lr: 1e-3,
    };
    const inception = await trpcRaw(api.url, 'sweeps.create', api.token, {
      ...sweep,
      backbones: ['inceptionv3'],
      size: 64,
    });
    expect(inception.status).toBe(400);
    expect(inception.body.error?.message).toBe(
      'size: inceptionv3 needs inputs of at least 75x75 pixels (got 64)',
    );
    expect(inception.body.error?.data.issues?.map((i) => i.path)).toEqual(['size']);

    const tiny = await trpcRaw(api.url, 'sweeps.create', api.token, {
      ...sweep,
      backbones: ['smallcnn'],
      size: 8,
    });
    expect(tiny.status).toBe(400);
    expect(tiny.body.error?.message).toBe('size: smallcnn needs inputs of at least 16x16 pixels (got 8)');

    const augment = await trpcRaw(api.url, 'sweeps.create', api.token, {
      ...sweep,
      backbones: ['smallcnn'],
      size: 32,
      augment: { horizontalFlip: true, evil: 'x'.repeat(10_000) },
    });
    expect(augment.status).toBe(400);
    expect(augment.body.error?.message).toMatch(
      /^augment: unknown field 'evil' \(valid: horizontalFlip, shift, rotation\)$/,
    );

    // Nothing reached the queue: no sweep, no run, and a trainer leases nothing.
    expect((await trpcRaw(api.url, 'sweeps.list', api.token, undefined, 'GET')).body.result?.data).toEqual(
      [],
    );
    expect((await trpcRaw(api.url, 'runs.list', api.token, undefined, 'GET')).body.result?.data).toEqual([]);
    const trainer = await trpcRaw(api.url, 'tokens.create', api.token, { name: 't', role: 'trainer' });
    const trainerToken = (trainer.body.result!.data as { token: string }).token;
    const reg = await trpcRaw(api.url, 'trainer.register', trainerToken, {
      name: 'box',
      capabilities: { backend: 'wasm' },
    });
    const { trainerId } = reg.body.result!.data as { trainerId: string };
    const lease = await trpcRaw(api.url, 'trainer.lease', trainerToken, { trainerId, freeSlots: 4 });
    expect(lease.body.result?.data).toEqual({ runs: [], leaseSeconds: expect.any(Number) });
  });

  it('refuses an oversized sweep at once (issue 15: 4,000 class names of 1,000 characters × 50 seeds)', async () => {
    const started = Date.now();
    const res = await trpcRaw(api.url, 'sweeps.create', api.token, {
      name: 'oversized',
      datasets: ['generated:flowers17'],
      backbones: ['smallcnn'],
      heads: ['gap'],
      optimizers: ['adam'],
      seeds: Array.from({ length: 50 }, (_, i) => i),
      classes: Array.from({ length: 4000 }, (_, i) => `${'c'.repeat(996)}${String(i).padStart(4, '0')}`),
      epochs: 1,
      batchSize: 8,
      size: 32,
      lr: 1e-3,
    });
    const ms = Date.now() - started;
    expect(res.status).toBe(400);
    expect(res.body.error?.message).toBe('classes: has 4000 items; the limit is 1000');
    // Within the count, each name is bounded too; thousands of problems are listed as a few.
    const long = await trpcRaw(api.url, 'sweeps.create', api.token, {
      name: 'long',
      datasets: ['generated:flowers17'],
      backbones: ['smallcnn'],
      heads: ['gap'],
      optimizers: ['adam'],
      classes: Array.from({ length: 1000 }, (_, i) => `${'c'.repeat(996)}${String(i).padStart(4, '0')}`),
      epochs: 1,
      batchSize: 8,
      size: 32,
      lr: 1e-3,
    });
    expect(long.status).toBe(400);
    expect(long.body.error?.message).toMatch(
      /^classes\.0: is 1000 characters long; the limit is 128; .*… and 980 more problems$/,
    );
    expect(long.body.error?.data.issues).toHaveLength(20);
    expect(ms).toBeLessThan(5000);
    expect((await trpcRaw(api.url, 'sweeps.list', api.token, undefined, 'GET')).body.result?.data).toEqual(
      [],
    );
  });
});
