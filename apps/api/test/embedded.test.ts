import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApi } from '../src/main.js';
import { apiClient, waitFor } from './helpers.js';

const apiDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

async function refusesConnections(url: string) {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.end();
    return false;
  } catch {
    return true;
  }
}

describe('embedded Postgres (no DATABASE_URL)', () => {
  let home: string;
  const savedUrl = process.env.DATABASE_URL;
  beforeAll(async () => {
    delete process.env.DATABASE_URL;
    // Under /tmp: as root, the postgres user must be able to reach the data directory.
    home = await mkdtemp(join(tmpdir(), 'headbench-home-'));
  });
  afterAll(async () => {
    if (savedUrl !== undefined) process.env.DATABASE_URL = savedUrl;
    await rm(home, { recursive: true, force: true });
  });

  it('starts, keeps data across a restart, and stops cleanly', async () => {
    const api = await createApi({ home, port: 0, quiet: true });
    expect(api.databaseUrl).toMatch(/^postgresql:\/\/postgres:.+@127\.0\.0\.1:\d+\/headbench$/);
    expect(api.adminToken).toMatch(/^hb_/);
    const tokenFile = join(home, 'admin-token');
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    expect((await readFile(tokenFile, 'utf8')).trim()).toBe(api.adminToken);
    const client = apiClient(api.url, api.adminToken!);
    const sweep = await client.sweeps.create.mutate({
      name: 'kept',
      datasets: ['generated:flowers17'],
      backbones: ['smallcnn'],
      heads: ['gap'],
      optimizers: ['sgd'],
      epochs: 1,
      batchSize: 4,
      size: 32,
      lr: 0.01,
    });
    await api.close();
    expect(await refusesConnections(api.databaseUrl)).toBe(true);
    expect(existsSync(join(home, 'pg', 'postmaster.pid'))).toBe(false);

    const again = await createApi({ home, port: 0, quiet: true });
    try {
      expect(again.adminToken).toBe(api.adminToken); // same token, read back from the state dir
      const c2 = apiClient(again.url, again.adminToken!);
      const list = await c2.sweeps.list.query();
      expect(list.map((s) => s.id)).toEqual([sweep.id]);
      expect(list[0].runs).toEqual({ queued: 1 });
    } finally {
      await again.close();
    }
    expect(await refusesConnections(again.databaseUrl)).toBe(true);
  });

  it('the CLI start stops Postgres on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: apiDir,
      env: { ...process.env, HEADBENCH_HOME: home, PORT: '0', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const started = Date.now();
    while (!/headbench api on (http:\/\/\S+)/.test(out)) {
      if (child.exitCode !== null || Date.now() - started > 60_000)
        throw new Error(`API did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = out.match(/headbench api on (http:\/\/\S+)/)![1];
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect(existsSync(join(home, 'pg', 'postmaster.pid'))).toBe(true);
    const code = await new Promise<number | null>((res) => {
      child.on('exit', (c) => res(c));
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
    expect(existsSync(join(home, 'pg', 'postmaster.pid'))).toBe(false);
  });

  it('runs Postgres in its own process group: a terminal Ctrl-C (SIGINT to the group) reaches only the API, which stops it', async () => {
    // detached: the CLI gets a process group of its own, like a shell job.
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: apiDir,
      env: { ...process.env, HEADBENCH_HOME: home, PORT: '0', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const started = Date.now();
    while (!/headbench api on (http:\/\/\S+)/.test(out)) {
      if (child.exitCode !== null || Date.now() - started > 60_000)
        throw new Error(`API did not start:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const pgPid = Number((await readFile(join(home, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    const pgrp = async (pid: number) =>
      Number((await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ')[2]);
    expect(await pgrp(child.pid!)).toBe(child.pid);
    expect(await pgrp(pgPid)).toBe(pgPid); // its own group, not the API's
    const code = await new Promise<number | null>((res) => {
      child.on('exit', (c) => res(c));
      process.kill(-child.pid!, 'SIGINT'); // what a terminal's Ctrl-C does
    });
    expect(code).toBe(0);
    expect(out).toMatch(/SIGINT, shutting down/);
    expect(existsSync(join(home, 'pg', 'postmaster.pid'))).toBe(false);
  });

  it('notices an embedded Postgres killed under it (issue 15 #17): logs it, health says so, restarts it', async () => {
    const errors = vi.spyOn(console, 'error');
    const api = await createApi({ home, port: 0, quiet: true });
    try {
      const health = async () => {
        const r = await fetch(`${api.url}/health`);
        return { status: r.status, body: (await r.json()) as Record<string, unknown> };
      };
      expect(await health()).toEqual({
        status: 200,
        body: {
          ok: true,
          service: 'headbench-api',
          database: 'up',
          embeddedPostgres: { state: 'up', restarts: 0 },
        },
      });
      const client = apiClient(api.url, api.adminToken!);
      const before = await client.tokens.create.mutate({ name: 'kept across the crash', role: 'member' });
      const pidFile = join(home, 'pg', 'postmaster.pid');
      const killed = Number((await readFile(pidFile, 'utf8')).split('\n')[0]);
      process.kill(killed, 'SIGKILL'); // what the OOM killer does
      const back = await waitFor(
        async () => {
          const r = await health();
          const e = r.body.embeddedPostgres as { restarts: number; state: string };
          return r.status === 200 && e.restarts === 1 && e.state === 'up' && r;
        },
        60_000,
        'the restarted server',
      );
      expect(back.body.database).toBe('up');
      const logged = errors.mock.calls.map((c) => String(c[0])).join('\n');
      expect(logged).toMatch(
        new RegExp(
          `\\[postgres\\] the embedded server \\(pid ${killed}\\) exited unexpectedly \\(SIGKILL\\)`,
        ),
      );
      expect(Number((await readFile(pidFile, 'utf8')).split('\n')[0])).not.toBe(killed);
      // The API works again on the new server, with what was stored before.
      expect((await client.tokens.list.query()).map((t) => t.id)).toContain(before.id);
    } finally {
      errors.mockRestore();
      await api.close();
    }
    expect(await refusesConnections(api.databaseUrl)).toBe(true);
  });
});
