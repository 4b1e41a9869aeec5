import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support.js';

// `npm test` starts with test/preflight.ts: before lint, type-checks or any test, it says what the
// browser suite needs when Chromium is missing, and under CI=true it fails.
const preflight = (env: Record<string, string>) =>
  spawnSync(join(ROOT, 'node_modules', '.bin', 'tsx'), [join(ROOT, 'test', 'preflight.ts')], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: '', ...env },
  });

describe('npm test without Chromium', () => {
  it('says what to install and goes on without the browser suite', () => {
    const r = preflight({ HEADBENCH_CHROMIUM: '/nonexistent/chromium' });
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('No Chromium at /nonexistent/chromium');
    expect(r.stderr).toContain('sudo apt-get install -y chromium');
    expect(r.stderr).toContain('brew install --cask chromium');
    expect(r.stderr).toContain('HEADBENCH_CHROMIUM=');
    expect(r.stderr).toContain('The browser suite will be SKIPPED');
  });

  it('fails loudly under CI=true', () => {
    const r = preflight({ HEADBENCH_CHROMIUM: '/nonexistent/chromium', CI: 'true' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('CI=true: failing instead of skipping the browser suite.');
  });

  it('is silent when the browser is there', () => {
    const r = preflight({ HEADBENCH_CHROMIUM: process.execPath });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });
});
