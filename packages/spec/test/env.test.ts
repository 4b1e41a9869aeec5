import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENV, envTable, readEnv } from '../src/index.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('the environment module', () => {
  it('fills defaults, converts types and leaves unset variables without a default undefined', () => {
    const env = readEnv({ HEADBENCH_LEASE_SECONDS: '5', HEADBENCH_NO_WEB: '1' });
    expect(env.HEADBENCH_LEASE_SECONDS).toBe(5);
    expect(env.HEADBENCH_NO_WEB).toBe(true);
    expect(env.HEADBENCH_LIVE_INTERVAL_MS).toBe(100);
    expect(env.HEADBENCH_TRAINER_NOOP).toBe(false);
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.PORT).toBeUndefined();
  });

  it('names every bad value', () => {
    expect(() =>
      readEnv({ HEADBENCH_LEASE_SECONDS: 'soon', PORT: '70000', DATABASE_URL: 'mysql://x' }),
    ).toThrow(
      /invalid environment:\n {2}DATABASE_URL: must be a postgresql:\/\/ URL\n {2}PORT: .*\n {2}HEADBENCH_LEASE_SECONDS: .*/,
    );
  });

  it('reads an old name with a warning, and the new one wins', () => {
    const warnings: string[] = [];
    const old = readEnv({ HEADBENCH_API_URL: 'http://api:4000/' }, (m) => warnings.push(m));
    expect(old.HEADBENCH_API).toBe('http://api:4000');
    expect(warnings).toEqual(['HEADBENCH_API_URL is deprecated: set HEADBENCH_API instead']);
    expect(readEnv({ HEADBENCH_API: 'http://new:1', HEADBENCH_API_URL: 'http://old:2' }).HEADBENCH_API).toBe(
      'http://new:1',
    );
  });

  it('is the README table', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const table = /<!-- env:start -->\n([\s\S]*?)\n<!-- env:end -->/.exec(readme)?.[1];
    expect(table).toBe(envTable());
  });

  it('covers every variable the code base reads, and the code reads them only through readEnv', () => {
    const files = execFileSync(
      'git',
      ['ls-files', '-co', '--exclude-standard', 'apps', 'packages', 'test', 'bench'],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    )
      .split('\n')
      .filter((f) => /\.(ts|tsx|js|mjs)$/.test(f) && !f.includes('/generated/'));
    // Dev tools the Prisma CLI loads on its own (not part of headbench's processes).
    const outside = new Set(['apps/api/prisma.config.ts', 'apps/api/tools/schema-engine.mjs']);
    const direct: string[] = [];
    const unknown = new Set<string>();
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(join(ROOT, f), 'utf8');
      } catch {
        continue; // listed but deleted in the working tree
      }
      if (!outside.has(f) && !f.endsWith('.test.ts'))
        for (const m of text.matchAll(/process\.env(\.[A-Z_]+|\[)/g)) direct.push(`${f}: ${m[0]}`);
      for (const m of text.matchAll(/\b((HEADBENCH|BENCH)_[A-Z0-9_]+)\b/g))
        if (!(m[1] in ENV)) unknown.add(`${f}: ${m[1]}`);
    }
    expect(direct).toEqual([]);
    expect([...unknown].filter((u) => !u.endsWith('HEADBENCH_API_URL'))).toEqual([]);
  });
});
