// The dashboard end to end: real API process + Postgres, real Next server, Debian chromium, and a trainer
// speaking the real protocol. Screenshots land in test-results/web/ (gitignored).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createHeadbenchClient, type HeadbenchClient } from '@headbench/client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiProcess,
  buildWeb,
  launchBrowser,
  ROOT,
  startApi,
  startWeb,
  type WebServer,
  waitFor,
} from './harness.js';
import { TestTrainer } from './trainer.js';

const SHOTS = join(ROOT, 'test-results', 'web');
const EPOCHS = 6;

let api: ApiProcess;
let web: WebServer;
let browser: Browser;
let page: Page;
let admin: HeadbenchClient;

beforeAll(async () => {
  await mkdir(SHOTS, { recursive: true });
  [api] = await Promise.all([startApi(), buildWeb()]);
  admin = createHeadbenchClient({ url: api.url, token: api.adminToken });
  web = await startWeb(api.url);
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  page.setDefaultTimeout(15_000);
}, 400_000);

afterAll(async () => {
  await browser?.close();
  await web?.stop();
  await api?.dispose();
});

const points = (title: string) =>
  page
    .locator(`[data-chart="${title}"]`)
    .getAttribute('data-points')
    .then((v) => Number(v ?? 0));

describe('dashboard', () => {
  let sweepId: string;
  let trainer: TestTrainer;

  it('redirects signed-out visits to sign-in, rejects a bad token, signs in', async () => {
    await page.goto(`${web.url}/sweeps`);
    expect(new URL(page.url()).pathname).toBe('/signin');
    await page.getByLabel('API token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/error=invalid/);
    expect(await page.locator('p.error[role="alert"]').textContent()).toContain('not accepted');
    await page.getByLabel('API token').fill(api.adminToken);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${web.url}/sweeps`);
    expect(await page.getByText('No sweeps yet').count()).toBe(1);
    expect(await page.getByTestId('whoami').textContent()).toContain('admin');
  });

  it('creates a sweep from the form, showing the API validation message per field', async () => {
    await page.goto(`${web.url}/sweeps/new`);
    await page.getByLabel('Name').fill('e2e heads');
    await page.getByLabel('Datasets').fill('generated:flowers17?perClass=4');
    await page.getByRole('checkbox', { name: 'vgg16' }).uncheck();
    await page.getByRole('checkbox', { name: 'smallcnn' }).check();
    await page.getByRole('checkbox', { name: 'rmsprop' }).uncheck();
    await page.getByRole('checkbox', { name: 'adam' }).check();
    await page.getByLabel('Learning rate').fill('0.001');
    await page.getByLabel('Epochs').fill('0');
    await page.getByLabel('Batch size').fill('8');
    await page.getByLabel('Input size').fill('32');
    await page.getByLabel('Seeds').fill('0, 1');
    await page.getByRole('button', { name: 'Create sweep' }).click();
    const epochsError = page.locator('[data-field="epochs"]');
    await epochsError.waitFor();
    expect(await epochsError.textContent()).toMatch(/>=\s*1/);
    expect(await page.locator('[data-field="name"]').count()).toBe(0);

    await page.getByLabel('Epochs').fill(String(EPOCHS));
    await page.getByRole('button', { name: 'Create sweep' }).click();
    await page.waitForURL(/\/sweeps\/[0-9a-f-]{36}$/);
    sweepId = page.url().split('/').pop()!;
    const runs = await admin.runs.list.query({ sweepId });
    expect(runs).toHaveLength(6);
    expect(new Set(runs.map((r) => r.config.head))).toEqual(new Set(['fc', 'gap', 'gmp']));
  });

  it('draws metrics live as the trainer reports them, without reload', async () => {
    await page.locator('[data-chart="Validation accuracy"][data-ready="1"]').waitFor();
    // The socket is subscribed once the "connecting" banner is gone.
    await waitFor(async () => (await page.locator('[data-live]').count()) === 0, 15_000, 'live connection');
    expect(await points('Validation accuracy')).toBe(0);

    const { token } = await admin.tokens.create.mutate({
      name: 'e2e trainer',
      role: 'trainer',
      user: 'fleet',
    });
    trainer = new TestTrainer(api.url, token);
    await trainer.register('e2e-trainer-1');
    const leased = await trainer.lease();
    expect(leased).toHaveLength(6);

    const seen: number[] = [];
    for (let epoch = 1; epoch <= EPOCHS; epoch++) {
      for (const run of leased) await trainer.reportEpoch(run, epoch);
      // 3 heads × `epoch` points once the update arrives (group means over the 2 seeds).
      seen.push(
        await waitFor(
          async () =>
            (await points('Validation accuracy')) >= 3 * epoch ? points('Validation accuracy') : false,
          10_000,
          `epoch ${epoch} on the chart`,
        ),
      );
    }
    expect(seen).toEqual([3, 6, 9, 12, 15, 18]);
    expect(await points('Train − val accuracy gap')).toBe(18);
    // Still the same document: no navigation happened.
    expect(new URL(page.url()).pathname).toBe(`/sweeps/${sweepId}`);

    for (const run of leased) await trainer.finish(run, 4);
    await waitFor(
      async () => (await page.locator('table[aria-label="Runs"] .status.succeeded').count()) === 6,
      15_000,
      'all runs succeeded in the table',
    );
    expect(await page.locator('table[aria-label="Runs"] tbody tr').first().textContent()).toContain(
      'e2e-trainer-1',
    );
    await page.screenshot({ path: join(SHOTS, 'sweep-view.png'), fullPage: true });
  });

  it('report tab: table and verdict match the stored metrics', async () => {
    await page.getByRole('tab', { name: 'Report' }).click();
    const table = page.locator('table[aria-label="Report table smallcnn"]');
    await table.waitFor();
    const rows = await table
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent?.trim() ?? '')),
      );
    // Expected values straight from the API's stored series (independent of the dashboard's code).
    const runs = await admin.runs.list.query({ sweepId });
    const bestByHead = new Map<string, number[]>();
    const epochByHead = new Map<string, number[]>();
    for (const r of runs) {
      const s = await admin.runs.metrics.query({ runId: r.id, names: ['val_accuracy'] });
      const pts = s.val_accuracy;
      const best = pts.reduce((a, b) => (b.value > a.value ? b : a));
      const head = String(r.config.head);
      bestByHead.set(head, [...(bestByHead.get(head) ?? []), best.value]);
      epochByHead.set(head, [...(epochByHead.get(head) ?? []), best.epoch!]);
    }
    const meanSd = (xs: number[]) => {
      const m = xs.reduce((a, b) => a + b, 0) / xs.length;
      const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
      return { m, sd };
    };
    for (const head of ['fc', 'gap', 'gmp']) {
      const row = rows.find((r) => r[0] === head)!;
      expect(row, head).toBeTruthy();
      const { m, sd } = meanSd(bestByHead.get(head)!);
      expect(row[2]).toBe(`${(100 * m).toFixed(1)} ± ${(100 * sd).toFixed(1)}`);
      const e = meanSd(epochByHead.get(head)!);
      expect(row[3]).toBe(`${e.m.toFixed(1)} ± ${e.sd.toFixed(1)}`);
    }
    const ranked = [...bestByHead].map(([h, xs]) => ({ h, ...meanSd(xs) })).sort((a, b) => b.m - a.m);
    const verdict = await page.getByTestId('verdict').textContent();
    expect(verdict).toContain(`smallcnn: ${ranked[0].h} is best`);
    const clear = ranked[0].m - ranked[1].m > Math.max(ranked[0].sd, ranked[1].sd);
    expect(verdict).toContain(
      clear ? 'a lead larger than the seed-to-seed spread' : 'within the seed-to-seed spread',
    );
    await page.locator('[data-chart="smallcnn: validation loss"][data-ready="1"]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'report.png'), fullPage: true });
  });

  it('run view: confusion matrix, CAM images, events', async () => {
    await page.getByRole('tab', { name: 'Charts & runs' }).click();
    await page.locator('table[aria-label="Runs"] tbody tr a').first().click();
    await page.waitForURL(/\/runs\//);
    const matrix = page.locator('table.heatmap');
    await matrix.waitFor();
    expect(await matrix.locator('tbody tr').count()).toBe(4);
    expect(await matrix.locator('tbody tr').first().locator('td').first().textContent()).toBe('8');
    const cams = page.locator('img[alt^="CAM"]');
    expect(await cams.count()).toBe(2);
    await waitFor(
      () => cams.first().evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth === 32),
      10_000,
      'CAM image',
    );
    expect(await page.locator('section[aria-label="Events"] li').count()).toBeGreaterThan(0);
    await page.locator('[data-chart="val_accuracy"][data-ready="1"]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'run-view.png'), fullPage: true });
  });

  it('fleet page lists the trainer; sign-out ends the session', async () => {
    await page.goto(`${web.url}/trainers`);
    const row = page.locator('table[aria-label="Trainers"] tbody tr', { hasText: 'e2e-trainer-1' });
    expect(await row.count()).toBe(1);
    expect(await row.textContent()).toContain('e2e-trainer-1.local');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/signin$/);
    await page.goto(`${web.url}/sweeps/${sweepId}`);
    expect(new URL(page.url()).pathname).toBe('/signin');
  });
});
