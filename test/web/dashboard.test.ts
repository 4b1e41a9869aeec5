// The dashboard end to end: real API process + Postgres, real Next server, Debian chromium, and a real
// `headbench-trainer` process training tiny runs (smallcnn on a generated 3-class set, wasm backend).
// Screenshots land in test-results/web/ (gitignored).
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHeadbenchClient, type HeadbenchClient } from '@headbench/client';
import { type RunConfig, type RunResult, type RunSummary, writeReport } from '@headbench/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROWSER_REQUIRED, chromiumFound, MISSING_CHROMIUM } from '../browser.js';
import {
  type ApiProcess,
  buildWeb,
  launchBrowser,
  ROOT,
  startApi,
  startTrainer,
  startWeb,
  type TrainerProcess,
  type WebServer,
  waitFor,
} from './harness.js';

const SHOTS = join(ROOT, 'test-results', 'web');
// 2 heads × 2 seeds × 3 epochs on 24 tiny images: about a minute on 2 cores with 2 trainer slots.
const DATASET = 'generated:flowers3?perClass=8&size=36';
const EPOCHS = 3;
const RUNS = 4;
const VAL = 'Validation accuracy';

let api: ApiProcess;
let web: WebServer;
let browser: Browser;
let page: Page;
let admin: HeadbenchClient;
let trainer: TrainerProcess | undefined;

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
  await trainer?.stop();
  await web?.stop();
  await api?.dispose();
});

const points = (title: string) =>
  page
    .locator(`[data-chart="${title}"]`)
    .getAttribute('data-points')
    .then((v) => Number(v ?? 0));

/** val_accuracy points the API has stored for the sweep, per run. */
async function storedVal(sweepId: string) {
  const runs = await admin.runs.list.query({ sweepId });
  const out = new Map<string, number>();
  for (const r of runs)
    out.set(
      r.id,
      (await admin.runs.metrics.query({ runId: r.id, names: ['val_accuracy'] })).val_accuracy?.length ?? 0,
    );
  return out;
}
const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

// Without Chromium: skipped with the notice test/preflight.ts printed, or (CI=true) failed.
if (!chromiumFound() && BROWSER_REQUIRED) throw new Error(MISSING_CHROMIUM);

describe.skipIf(!chromiumFound())('dashboard', () => {
  let sweepId: string;

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
    // The option lists are the API's own (meta.names).
    const names = await admin.meta.names.query();
    const options = (field: string) =>
      page.locator(`input[name="${field}"]`).evaluateAll((els) => els.map((e) => e.getAttribute('value')));
    expect(await options('backbones')).toEqual(names.backbones);
    expect(await options('heads')).toEqual(names.heads);
    expect(await options('optimizers')).toEqual(names.optimizers);
    // Packaged pretrained weights are offered for the weights field.
    expect(
      await page
        .locator('#known-weights option')
        .evaluateAll((els) => els.map((e) => e.getAttribute('value'))),
    ).toEqual(['none', 'npm:nsfwjs/mobilenet_v2', 'npm:nsfwjs/inception_v3']);
    await page.getByLabel('Name').fill('e2e heads');
    await page.getByLabel('Datasets').fill(DATASET);
    await page.getByRole('checkbox', { name: 'vgg16' }).uncheck();
    await page.getByRole('checkbox', { name: 'smallcnn' }).check();
    await page.getByRole('checkbox', { name: 'gmp' }).uncheck();
    await page.getByRole('checkbox', { name: 'rmsprop', exact: true }).uncheck();
    await page.getByRole('checkbox', { name: 'adam' }).check();
    await page.getByLabel('Learning rate').fill('0.001');
    await page.getByLabel('Epochs').fill('0');
    await page.getByLabel('Batch size').fill('8');
    await page.getByLabel('Input size').fill('32');
    await page.getByLabel('Seeds').fill('0, 1');
    // A frozen backbone without weights measures nothing: the form says so while it is chosen.
    await page.getByLabel('Trainable').fill('frozen');
    await page.locator('[data-warning="frozen-without-weights"]').waitFor();
    await page.getByLabel('Trainable').fill('all');
    await page.locator('[data-warning="frozen-without-weights"]').waitFor({ state: 'detached' });
    // The form shows the spec it will submit (the same file `headbench compare --spec` runs).
    await page.getByText('Spec this form submits').click();
    expect(JSON.parse((await page.locator('[data-spec]').textContent()) ?? '')).toMatchObject({
      name: 'e2e heads',
      backbones: ['smallcnn'],
      heads: ['fc', 'gap'],
      optimizers: ['adam'],
      seeds: [0, 1],
      trainable: 'all',
      size: 32,
    });
    await page.getByRole('button', { name: 'Create sweep' }).click();
    const epochsError = page.locator('[data-field="epochs"]');
    await epochsError.waitFor();
    expect(await epochsError.textContent()).toMatch(/0 is not an integer in \[1, 10000\]/);
    expect(await page.locator('[data-field="name"]').count()).toBe(0);

    await page.getByLabel('Epochs').fill(String(EPOCHS));
    await page.getByRole('button', { name: 'Create sweep' }).click();
    await page.waitForURL(/\/sweeps\/[0-9a-f-]{36}$/);
    sweepId = page.url().split('/').pop()!;
    // The sweep's page hands its spec back as a file.
    const [file] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download spec' }).click(),
    ]);
    const downloaded = JSON.parse(await readFile((await file.path())!, 'utf8'));
    expect(downloaded).toEqual((await admin.sweeps.get.query({ id: sweepId })).spec);
    const runs = await admin.runs.list.query({ sweepId });
    expect(runs).toHaveLength(RUNS);
    expect(new Set(runs.map((r) => r.config.head))).toEqual(new Set(['fc', 'gap']));
    expect(runs.every((r) => r.status === 'queued')).toBe(true);
  });

  it('draws the real trainer’s epochs live, and fills in what it missed while live updates were down', async () => {
    await page.locator(`[data-chart="${VAL}"][data-ready="1"]`).waitFor();
    await waitFor(async () => (await page.locator('[data-live]').count()) === 0, 15_000, 'live connection');
    // One line per run: the chart's point count is then exactly the stored val_accuracy points.
    await page.getByLabel('Group by').selectOption('');
    expect(await points(VAL)).toBe(0);
    // Every change of the chart's point count, recorded in the page; a reload would lose the record.
    await page.evaluate((title) => {
      const w = globalThis as unknown as { hbSeen: number[] };
      const doc = (globalThis as unknown as { document: { querySelector(s: string): HbEl } }).document;
      type HbEl = { getAttribute(n: string): string | null };
      const el = doc.querySelector(`[data-chart="${title}"]`);
      w.hbSeen = [];
      const Observer = (globalThis as unknown as { MutationObserver: new (cb: () => void) => HbObs })
        .MutationObserver;
      type HbObs = { observe(el: HbEl, o: object): void };
      new Observer(() => {
        const n = Number(el?.getAttribute('data-points') ?? 0);
        if (w.hbSeen.at(-1) !== n) w.hbSeen.push(n);
      }).observe(el!, { attributes: true, attributeFilter: ['data-points'] });
    }, VAL);
    const seen = () => page.evaluate(() => (globalThis as unknown as { hbSeen: number[] }).hbSeen);

    const { token } = await admin.tokens.create.mutate({
      name: 'e2e trainer',
      role: 'trainer',
      user: 'fleet',
    });
    trainer = await startTrainer({ apiUrl: api.url, token, name: 'e2e-trainer', slots: 2 });

    // The first epochs arrive over the socket.
    await waitFor(async () => (await points(VAL)) >= 2, 120_000, 'first epochs on the chart');
    expect((await seen()).length).toBeGreaterThan(0);

    // The browser's network goes down (the API and the trainer carry on): the socket drops, reconnects fail
    // for real, the banner shows and the chart stops.
    await page.context().setOffline(true);
    await page.locator('[data-live="down"]').waitFor();
    const frozen = await points(VAL);
    const before = total(await storedVal(sweepId));
    // Wait until the trainer has stored at least one epoch the page never received.
    const during = await waitFor(
      async () => {
        const n = total(await storedVal(sweepId));
        return n > Math.max(frozen, before) ? n : false;
      },
      90_000,
      'an epoch reported during the outage',
    );
    expect(await points(VAL)).toBe(frozen);
    expect(await page.locator('[data-live="down"]').textContent()).toContain('Live updates are down');

    // Back: the page resubscribes and fetches what it missed with runs.metrics sinceStep.
    const metricsQueries: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('runs.metrics')) metricsQueries.push(decodeURIComponent(r.url()));
    });
    await page.context().setOffline(false);
    await waitFor(async () => (await page.locator('[data-live]').count()) === 0, 20_000, 'reconnect');
    // The resync reads the rows first, then the points: live epochs may reach the chart before its
    // runs.metrics request goes out, so wait for the request rather than for a point count.
    await waitFor(
      async () => metricsQueries.some((u) => /"sinceStep":[1-9]/.test(u)),
      20_000,
      'runs.metrics sinceStep refetch after reconnect',
    );
    await waitFor(async () => (await points(VAL)) >= during, 15_000, 'missed epochs fetched after reconnect');

    await waitFor(
      async () => (await page.locator('table[aria-label="Runs"] .status.succeeded').count()) === RUNS,
      180_000,
      'all runs succeeded in the table',
    );
    // The header follows: the sweep is done, without a reload.
    await waitFor(
      async () => (await page.locator('[data-sweep-status]').textContent())?.trim() === 'done',
      10_000,
      'sweep header shows done',
    );
    // Every epoch of every run, none lost to the outage; counted as they arrived, in the same document.
    await waitFor(async () => (await points(VAL)) === RUNS * EPOCHS, 10_000, 'every epoch on the chart');
    expect(total(await storedVal(sweepId))).toBe(RUNS * EPOCHS);
    const counts = await seen();
    expect(counts.at(-1)).toBe(RUNS * EPOCHS);
    expect(counts.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThan(counts[i - 1]);
    expect(new URL(page.url()).pathname).toBe(`/sweeps/${sweepId}`);

    // Each succeeded row shows its trainer and the parameter count the worker reported (was "—" for some).
    const stored = await admin.runs.list.query({ sweepId });
    const want = Object.fromEntries(stored.map((r) => [r.id, ['e2e-trainer', count(r.params!.total)]]));
    const cells = () =>
      page.locator('table[aria-label="Runs"] tbody tr').evaluateAll((trs) =>
        Object.fromEntries(
          trs.map((tr) => {
            const td = [...tr.querySelectorAll('td')].map((c) => c.textContent?.trim() ?? '');
            return [tr.getAttribute('data-run'), [td[3], td[6]]];
          }),
        ),
      );
    await waitFor(
      async () => {
        const got = await cells();
        return Object.entries(want).every(([id, v]) => JSON.stringify(got[id]) === JSON.stringify(v));
      },
      10_000,
      'trainer and params in every row',
    ).catch(async (e) => {
      throw new Error(`${e}: ${JSON.stringify(await cells())} vs ${JSON.stringify(want)}`);
    });

    await page.getByLabel('Group by').selectOption('head');
    await waitFor(async () => (await points(VAL)) === 2 * EPOCHS, 5_000, 'grouped by head');
    await page.screenshot({ path: join(SHOTS, 'sweep-view.png'), fullPage: true });
  });

  it('report tab: the same tables and verdict as report.md for the same runs', async () => {
    await page.getByRole('tab', { name: 'Report' }).click();
    const cells = (label: string) =>
      page
        .locator(`table[aria-label="${label}"] tbody tr`)
        .evaluateAll((trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent?.trim() ?? '')),
        );
    await page.locator('table[aria-label="Heads smallcnn"]').waitFor();
    const heads = await cells('Heads smallcnn');
    const pairs = await cells('Pairs smallcnn');
    const verdict = (await page.getByTestId('verdict').textContent())?.trim();

    // The same runs through the command line's report writer (core), from what the API stored.
    const runs = await admin.runs.list.query({ sweepId });
    const results: RunResult[] = [];
    const tests = new Map<string, number[]>();
    for (const r of runs) {
      const full = await admin.runs.get.query({ id: r.id });
      const summary = full.summary as unknown as RunSummary;
      const pts = (await admin.runs.metrics.query({ runId: r.id, names: ['val_accuracy'] })).val_accuracy;
      // Validation chose the epoch: the summary's selected epoch holds the logged maximum.
      const max = Math.max(...pts.map((p) => p.value));
      expect(pts.find((p) => p.epoch === summary.selected_epoch)!.value).toBeCloseTo(max, 6);
      expect(summary.val_accuracy).toBeCloseTo(max, 6);
      const head = String(r.config.head);
      tests.set(head, [...(tests.get(head) ?? []), summary.test_accuracy]);
      results.push({
        id: r.id,
        config: full.config as unknown as RunConfig,
        backend: full.backend ?? 'wasm',
        dataset: { name: 'flowers3', uri: DATASET, contentHash: '', classes: [], train: 0, test: 0 },
        params: full.params as unknown as RunResult['params'],
        epochs: [],
        summary,
        status: 'succeeded',
        timings: { started: new Date(0).toISOString(), seconds: 0 },
      });
    }
    const out = join(ROOT, 'test-results', 'web', 'report');
    await writeReport(results, out);
    const md = await readFile(join(out, 'report.md'), 'utf8');
    const mdRows = (heading: string) =>
      md
        .split(`### ${heading}\n\n`)[1]
        .split('\n\n')
        .find((block) => block.startsWith('|'))!
        .split('\n')
        .slice(2)
        .map((l) =>
          l
            .slice(2, -2)
            .split(' | ')
            .map((c) => c.replace(/\\\|/g, '|')),
        );
    const byHead = (rows: string[][]) => [...rows].sort((x, y) => x[0].localeCompare(y[0]));
    expect(byHead(heads)).toEqual(byHead(mdRows('Test accuracy at the validation-selected epoch')));
    expect(pairs).toEqual(mdRows('Pairs of heads'));
    expect(`**Verdict:** ${verdict}`).toBe(md.split('\n').find((l) => l.startsWith('**Verdict:**')));

    // And the head table against an independent computation: mean and 95% t-interval over 2 seeds,
    // t(0.975, 1) = 12.7062 from a printed table.
    expect(heads.map((r) => r[0]).sort()).toEqual(['fc', 'gap']);
    for (const [head, xs] of tests) {
      const m = (xs[0] + xs[1]) / 2;
      const half = (12.7062 * Math.abs(xs[0] - xs[1])) / Math.SQRT2 / Math.SQRT2;
      const row = heads.find((r) => r[0] === head)!;
      expect(row[1]).toBe('2');
      expect(row[2]).toBe((100 * m).toFixed(1));
      expect(row[3]).toBe(`${(100 * (m - half)).toFixed(1)}..${(100 * (m + half)).toFixed(1)}`);
    }
    expect(pairs).toHaveLength(1);
    expect(verdict).toContain('Highest mean test accuracy at the selected epoch:');
    await page.locator('[data-chart="smallcnn: validation loss"][data-ready="1"]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'report.png'), fullPage: true });
  });

  it('run view: confusion matrix and the CAM images the worker uploaded', async () => {
    await page.getByRole('tab', { name: 'Charts & runs' }).click();
    // A GAP run: CAMs need a pooled head (fc has none).
    await page
      .locator('table[aria-label="Runs"] tbody tr', { hasText: 'gap' })
      .first()
      .locator('a')
      .first()
      .click();
    await page.waitForURL(/\/runs\//);
    const run = await admin.runs.get.query({ id: page.url().split('/').pop()! });
    expect(run.config.head).toBe('gap');
    const confusion = (run.summary as { confusion: number[][] }).confusion;
    const matrix = page.locator('table.heatmap');
    await matrix.waitFor();
    const cells = await matrix
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => Number(td.textContent))),
      );
    expect(cells).toEqual(confusion);
    const camArtifacts = run.artifacts.filter((a) => a.kind === 'cam');
    expect(camArtifacts.length).toBeGreaterThan(0);
    const cams = page.locator('img[alt^="CAM"]');
    expect(await cams.count()).toBe(camArtifacts.length);
    // Real PNGs streamed through the dashboard from the API's artifact store.
    await waitFor(
      () =>
        cams.evaluateAll((imgs) =>
          imgs.every((img) => (img as unknown as { naturalWidth: number }).naturalWidth > 0),
        ),
      10_000,
      'CAM images decoded',
    );
    expect(await page.locator('section[aria-label="Events"] li').count()).toBeGreaterThan(0);
    await page.locator('[data-chart="val_accuracy"][data-ready="1"]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'run-view.png'), fullPage: true });
  });

  it('fleet page lists the trainer; sign-out ends the session', async () => {
    await page.goto(`${web.url}/trainers`);
    const row = page.locator('table[aria-label="Trainers"] tbody tr', { hasText: 'e2e-trainer' });
    expect(await row.count()).toBe(1);
    expect(await row.textContent()).toContain('wasm');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/signin$/);
    await page.goto(`${web.url}/sweeps/${sweepId}`);
    expect(new URL(page.url()).pathname).toBe('/signin');
  });
});

/** "264.2k" as the dashboard writes parameter counts. */
function count(n: number) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}
