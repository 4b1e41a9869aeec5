import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodeCorrectness } from '@headbench/spec';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HeadName, RunConfig } from '../src/config.js';
import { groupRuns, heatmapSvg, lineChartSvg, writeReport } from '../src/report/index.js';
import type { EpochMetrics, RunResult } from '../src/results.js';

// Independent reference statistics (sample std, as the report documents).
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) =>
  xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - avg(xs)) ** 2, 0) / (xs.length - 1));
const pm = (xs: number[]) => `${(100 * avg(xs)).toFixed(1)} ± ${(100 * sd(xs)).toFixed(1)}`;
// Two-sided 95% t quantiles from a printed table, by degrees of freedom.
const T975: Record<number, number> = { 1: 12.7062, 2: 4.302653, 4: 2.776445 };
const ci = (xs: number[]) => {
  const h = (T975[xs.length - 1] * sd(xs)) / Math.sqrt(xs.length);
  return `${(100 * (avg(xs) - h)).toFixed(1)}..${(100 * (avg(xs) + h)).toFixed(1)}`;
};
const TEST_IMAGES = 40;

const CLASSES = ['daffodil', 'snowdrop', 'lily', 'bluebell'];
const SHIFTS = [0, 1 / 16, 1 / 8, 1 / 4];
const SIZE = 64;

interface RunSpec {
  head: HeadName;
  seed: number;
  backbone?: RunConfig['backbone'];
  dataset?: string;
  epochs?: number;
  /** Val accuracy at each epoch (1-based index e → valAcc(e)). */
  valAcc: (e: number) => number;
  trainAcc?: (e: number) => number;
  shiftAcc?: number[];
  /** Test accuracy at the selected epoch (default: the best val accuracy, rounded to whole images). */
  testAcc?: number;
  lr?: number;
  cams?: string[];
  status?: RunResult['status'];
  error?: string;
  withSummary?: boolean;
}

function makeRun(s: RunSpec): RunResult {
  const n = s.epochs ?? 6;
  const epochs: EpochMetrics[] = [];
  for (let e = 1; e <= n; e++) {
    const val = s.valAcc(e);
    epochs.push({
      epoch: e,
      loss: 2 / e,
      accuracy: s.trainAcc ? s.trainAcc(e) : Math.min(1, val + 0.02 * e),
      val_loss: 1.5 / e + 0.01 * s.seed,
      val_accuracy: val,
      lr: s.lr ?? 1e-3,
      images_per_s: 100 + e,
      time_s: 10 * e,
    });
  }
  let best = 0;
  for (let i = 1; i < n; i++) if (epochs[i].val_accuracy > epochs[best].val_accuracy) best = i;
  const last = epochs[n - 1];
  // The first k test images right: per-image records that pair exactly across heads.
  const k = Math.round((s.testAcc ?? epochs[best].val_accuracy) * TEST_IMAGES);
  const shiftAcc = s.shiftAcc ?? SHIFTS.map((_, i) => last.val_accuracy - 0.05 * i);
  const backbone = s.backbone ?? 'vgg19';
  const dataset = s.dataset ?? 'generated:flowers17?classes=4';
  return {
    id: `${backbone}-${s.head}-${s.seed}-${s.lr ?? 1e-3}-${dataset.length}`,
    config: {
      dataset,
      backbone,
      weights: 'none',
      trainable: 'frozen',
      head: s.head,
      optimizer: 'rmsprop',
      lr: s.lr ?? 1e-3,
      decay: 0,
      batchSize: 16,
      // The configured maximum; shorter logs stand for early stopping.
      epochs: 6,
      seed: s.seed,
      size: SIZE,
    },
    backend: 'cpu',
    dataset: {
      name: dataset.includes('cifar') ? 'cifar4' : 'flowers17',
      uri: dataset,
      contentHash: 'h',
      classes: CLASSES,
      train: 245,
      val: 35,
      test: TEST_IMAGES,
    },
    params: { trainable: 2052, frozen: 20_024_384, total: 20_026_436, backbone: 20_024_384, head: 2052 },
    epochs,
    summary:
      s.withSummary === false
        ? undefined
        : {
            selected_epoch: best + 1,
            val_accuracy: epochs[best].val_accuracy,
            test_accuracy: k / TEST_IMAGES,
            test_loss: 0.5,
            test_correct: encodeCorrectness(Array.from({ length: TEST_IMAGES }, (_, i) => i < k)),
            test_count: TEST_IMAGES,
            split_hash: 'split0',
            last_epoch: n,
            test_accuracy_last: last.val_accuracy,
            test_loss_last: 0.6,
            train_accuracy: last.accuracy,
            gap: last.accuracy - k / TEST_IMAGES,
            cam_fidelity: s.head === 'fc' ? 'none' : s.head === 'gmp' ? 'approximate' : 'exact',
            confusion: CLASSES.map((_, i) => CLASSES.map((__, j) => (i === j ? 8 + s.seed : 1))),
            per_class_accuracy: CLASSES.map(() => 0.8),
            shifted: SHIFTS.map((f, i) => ({
              fraction: f,
              pixels: Math.round(f * SIZE),
              accuracy: shiftAcc[i],
              consistency: 1 - 0.1 * i,
              directions: i === 0 ? [shiftAcc[i]] : [1, 2, 3, 4].map(() => shiftAcc[i]),
            })),
            cams: s.cams ?? [],
          },
    status: s.status ?? 'succeeded',
    error: s.error,
    timings: { started: '2026-01-01T00:00:00Z', seconds: 60 },
  };
}

/** Rising curve that saturates at `top`, shifted by a per-seed offset. */
const rising = (top: number, offset: number) => (e: number) =>
  Math.min(1, top * (1 - Math.exp(-e / 2)) + offset);

async function pngSize(file: string): Promise<{ width?: number; height?: number; format?: string }> {
  const m = await sharp(file).metadata();
  return { width: m.width, height: m.height, format: m.format };
}

/** Cells of the table row whose first cell is `label`. */
function tableRow(md: string, section: string, label: string): string[] {
  const body = md.split(`## ${section}\n`)[1].split('\n## ')[0];
  const line = body.split('\n').find((l) => l.startsWith(`| ${label} |`));
  if (!line) throw new Error(`no row ${label} in section ${section}`);
  return line
    .slice(1, -1)
    .split(' | ')
    .map((c) => c.trim());
}

function verdictOf(md: string, section: string): string {
  const body = md.split(`## ${section}\n`)[1].split('\n## ')[0];
  return body.split('\n').find((l) => l.startsWith('**Verdict:**')) ?? '';
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'headbench-report-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('groupRuns', () => {
  it('averages over seeds by epoch number when runs stop at different epochs', () => {
    const a = makeRun({ head: 'gap', seed: 0, epochs: 5, valAcc: (e) => 0.1 * e });
    const b = makeRun({ head: 'gap', seed: 1, epochs: 3, valAcc: (e) => 0.1 * e + 0.04 });
    const c = makeRun({ head: 'fc', seed: 0, epochs: 4, valAcc: (e) => 0.05 * e });
    const groups = groupRuns([a, b, c]);
    expect(groups.map((g) => g.label)).toEqual(['gap', 'fc']);
    const gap = groups[0];
    expect(gap.seeds).toEqual([0, 1]);
    const va = gap.curves.val_accuracy;
    expect(va.epoch).toEqual([1, 2, 3, 4, 5]);
    expect(va.n).toEqual([2, 2, 2, 1, 1]);
    expect(va.mean[0]).toBeCloseTo(avg([0.1, 0.14]), 12);
    expect(va.std[2]).toBeCloseTo(sd([0.3, 0.34]), 12);
    expect(va.mean[4]).toBeCloseTo(0.5, 12);
    expect(va.std[4]).toBe(0);
    // Train − val gap curve is derived per run, then averaged.
    expect(gap.curves.gap.mean[1]).toBeCloseTo(
      avg([a.epochs[1].accuracy - 0.2, b.epochs[1].accuracy - 0.24]),
      12,
    );
    expect(gap.valAccuracy.values).toEqual([0.5, 0.34]);
    expect(gap.selectedEpoch.values).toEqual([5, 3]);
    expect(gap.valAccuracy.std).toBeCloseTo(sd([0.5, 0.34]), 12);
    expect(gap.testAccuracy.values).toEqual([0.5, 0.35]);
    // Two seeds: t(0.975, 1) = 12.706.
    expect(gap.testAccuracy.hi - gap.testAccuracy.mean).toBeCloseTo(
      (12.7062 * sd([0.5, 0.35])) / Math.sqrt(2),
      3,
    );
    expect(gap.shifted.map((s) => s.pixels)).toEqual([0, 4, 8, 16]);
    expect(gap.params.head).toBe(2052);
  });

  it('leaves runs still training out of the statistics, and failed runs out of the groups', () => {
    const running = makeRun({
      head: 'gmp',
      seed: 0,
      epochs: 4,
      valAcc: (e) => [0.3, 0.6, 0.5, 0.55][e - 1],
      withSummary: false,
      status: 'running',
    });
    const failed = makeRun({ head: 'gmp', seed: 1, valAcc: () => 0.9, status: 'failed', error: 'OOM' });
    const [g] = groupRuns([running, failed]);
    expect(g.runs).toHaveLength(1);
    expect(g.valAccuracy.n).toBe(0);
    expect(g.selectedEpoch.n).toBe(0);
    expect(g.curves.val_accuracy.mean).toEqual([0.3, 0.6, 0.5, 0.55]);
    expect(g.shifted).toEqual([]);
    expect(g.testAccuracy.n).toBe(0);
  });

  it('labels with the backbone when several, and groups on chosen fields', () => {
    const runs = [
      makeRun({ head: 'gap', seed: 0, backbone: 'vgg19', valAcc: rising(0.8, 0) }),
      makeRun({ head: 'gap', seed: 0, backbone: 'inceptionv3', valAcc: rising(0.8, 0) }),
      makeRun({ head: 'fc', seed: 1, backbone: 'inceptionv3', valAcc: rising(0.8, 0) }),
    ];
    expect(groupRuns(runs).map((g) => g.label)).toEqual(['vgg19 gap', 'inceptionv3 gap', 'inceptionv3 fc']);
    const byBackbone = groupRuns(runs, ['backbone']);
    expect(byBackbone.map((g) => [g.label, g.runs.length])).toEqual([
      ['vgg19', 1],
      ['inceptionv3', 2],
    ]);
  });
});

describe('charts', () => {
  it('draws one band polygon per banded series, a legend entry per series, and breaks lines at NaN', () => {
    const svg = lineChartSvg({
      title: 'T & <x>',
      xLabel: 'epoch',
      yLabel: 'acc',
      series: [
        {
          label: 'gap',
          color: '#0072B2',
          x: [1, 2, 3, 4],
          y: [1, 2, Number.NaN, 4],
          lo: [0, 1, 2, 3],
          hi: [2, 3, 4, 5],
        },
        { label: 'fc', color: '#D55E00', x: [1, 2, 3, 4], y: [4, 3, 2, 1] },
      ],
    });
    expect(svg).toContain('width="900" height="540"');
    expect(svg).toContain('T &amp; &lt;x&gt;');
    expect(svg.match(/<polygon /g)).toHaveLength(1);
    // gap: a 2-point path and a lone-point marker; fc: one path.
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg.match(/<circle /g)).toHaveLength(1);
    expect(svg).toMatch(/class="legend"[\s\S]*>gap<[\s\S]*>fc</);
  });

  it('puts decade ticks on a log axis', () => {
    const svg = lineChartSvg({
      title: 'loss',
      xLabel: 'epoch',
      yLabel: 'loss',
      logY: true,
      width: 400,
      height: 300,
      series: [{ label: 'fc', color: '#000', x: [1, 2, 3], y: [0.05, 3, 40] }],
    });
    for (const t of ['0.01', '0.1', '1', '10', '100']) expect(svg).toContain(`>${t}</text>`);
    expect(svg).toContain('width="400" height="300"');
  });

  it('writes counts in confusion cells only when they fit', () => {
    const small = heatmapSvg(
      [
        [7, 3],
        [0, 10],
      ],
      ['a', 'b'],
      ['a', 'b'],
      'cm',
    );
    expect(small).toContain('>7</text>');
    expect(small).toContain('accuracy 85.0% of 20');
    const k = 60;
    const big = heatmapSvg(
      Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 123 : 0))),
      [],
      [],
      'big',
    );
    expect(big).not.toContain('>123</text>');
  });
});

describe('writeReport', () => {
  const heads: { head: HeadName; top: number; offsets: number[] }[] = [
    { head: 'fc', top: 0.7, offsets: [0.0, 0.01, -0.01] },
    { head: 'gap', top: 0.85, offsets: [0.0, 0.01, 0.02] },
    { head: 'gmp', top: 0.6, offsets: [-0.05, 0.05, 0.0] },
  ];
  let out: string;
  let runs: RunResult[];
  let files: string[];
  let md: string;

  beforeAll(async () => {
    out = path.join(dir, 'clear');
    // Small CAM images written by the test: 2 per seed for gap, pure red so the grid can be checked.
    await mkdir(path.join(out, 'cams'), { recursive: true });
    const camFiles: string[][] = [];
    for (let s = 0; s < 3; s++) {
      const pair: string[] = [];
      for (let k = 0; k < 2; k++) {
        const rel = `cams/gap-${s}-${k}.png`;
        await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 255, g: 0, b: 0 } } })
          .png()
          .toFile(path.join(out, rel));
        pair.push(rel);
      }
      camFiles.push(pair);
    }
    runs = heads.flatMap(({ head, top, offsets }) =>
      offsets.map((o, seed) =>
        makeRun({
          head,
          seed,
          epochs: head === 'gmp' && seed === 2 ? 4 : 6,
          valAcc: rising(top, o),
          cams: head === 'gap' ? camFiles[seed] : [],
        }),
      ),
    );
    runs.push(
      makeRun({ head: 'gem', seed: 0, valAcc: () => 0.5, status: 'failed', error: 'tensor shape mismatch' }),
    );
    ({ files } = await writeReport(runs, out));
    md = await readFile(path.join(out, 'report.md'), 'utf8');
  });

  it('writes line charts and confusion matrices as decodable PNGs', async () => {
    for (const f of ['val_accuracy', 'val_loss', 'gap', 'robustness']) {
      const file = path.join(out, 'figures', `vgg19_${f}.png`);
      expect(files).toContain(file);
      expect(await pngSize(file)).toEqual({ width: 900, height: 540, format: 'png' });
    }
    for (const h of ['fc', 'gap', 'gmp']) {
      const file = path.join(out, 'figures', `vgg19_${h}_confusion.png`);
      const m = await pngSize(file);
      expect(m.format).toBe('png');
      expect(m.width).toBeGreaterThan(200);
      expect(m.height).toBeGreaterThan(200);
    }
    expect(existsSync(path.join(out, 'figures', 'vgg19_gem_confusion.png'))).toBe(false);
    for (const f of files) expect(existsSync(f)).toBe(true);
  });

  it('composes the CAM grid from the runs’ PNGs, only for heads that have CAMs', async () => {
    const file = path.join(out, 'figures', 'vgg19_gap_cam.png');
    expect(files).toContain(file);
    expect(existsSync(path.join(out, 'figures', 'vgg19_fc_cam.png'))).toBe(false);
    const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    let red = 0;
    for (let i = 0; i < data.length; i += info.channels) {
      if (data[i] > 240 && data[i + 1] < 15 && data[i + 2] < 15) red++;
    }
    // Six 32×24 tiles, placed unscaled.
    expect(red).toBe(6 * 32 * 24);
    expect(info.height).toBeGreaterThanOrEqual(3 * 24);
    expect(info.width).toBeGreaterThanOrEqual(2 * 32);
  });

  it('tabulates test accuracy at the selected epoch with 95% t-intervals, computed independently', () => {
    for (const { head } of heads) {
      const mine = runs.filter((r) => r.config.head === head && r.status === 'succeeded');
      const tests = mine.map((r) => r.summary!.test_accuracy);
      expect(tableRow(md, 'vgg19', head)).toEqual([head, '3', (100 * avg(tests)).toFixed(1), ci(tests)]);
      const vals = mine.map((r) => Math.max(...r.epochs.map((e) => e.val_accuracy)));
      const selected = mine.map((r) => {
        const v = r.epochs.map((e) => e.val_accuracy);
        return v.indexOf(Math.max(...v)) + 1;
      });
      const details = tableRow(md.replace(/[\s\S]*### Details/, '## vgg19\n'), 'vgg19', head);
      expect(details[1]).toBe('2.05k / 2.05k / 20.0M');
      expect(details[2]).toBe(avg(selected).toFixed(1));
      expect(details[3]).toBe(`${(100 * avg(vals)).toFixed(1)} (${ci(vals)})`);
      const robust = tableRow(md.replace(/[\s\S]*### Robustness to shifts/, '## vgg19\n'), 'vgg19', head);
      SHIFTS.forEach((_, i) => {
        expect(robust[1 + i]).toBe(
          `${pm(mine.map((r) => r.summary!.shifted[i].accuracy))} / ${pm(mine.map(() => 1 - 0.1 * i))}`,
        );
      });
    }
    expect(md).toContain('1/16 width (4 px): acc / consistent (%)');
    expect(md).not.toMatch(/^\| gem \|/m);
  });

  it('tabulates each pair: paired difference, interval, discordant images and Holm-adjusted p', () => {
    const acc = (head: string) =>
      runs
        .filter((r) => r.config.head === head && r.status === 'succeeded')
        .map((r) => r.summary!.test_accuracy);
    const d = acc('gap').map((v, i) => v - acc('fc')[i]);
    const row = tableRow(md, 'vgg19', 'gap − fc');
    expect(row.slice(0, 4)).toEqual(['gap − fc', '3', (100 * avg(d)).toFixed(1), ci(d)]);
    // Only gap right on (k_gap − k_fc) images per seed; none the other way.
    const onlyGap = acc('gap').reduce((s, v, i) => s + Math.round(40 * v) - Math.round(40 * acc('fc')[i]), 0);
    expect(row[4]).toBe(`${onlyGap} / 0`);
    expect(row[5]).toBe('< 0.001');
    expect(row[6]).toBe('gap beats fc');
  });

  it('says which head beats which, with the interval and adjusted p', () => {
    const v = verdictOf(md, 'vgg19');
    expect(v).toMatch(/gap beats fc by \d+\.\d points \(95% CI \d+\.\d\.\.\d+\.\d, adjusted p < 0\.001\)/);
    expect(v).toContain('Highest mean test accuracy at the selected epoch: gap');
  });

  it('embeds the figures, lists datasets, backends and failed runs', () => {
    expect(md).toContain('![Validation accuracy per epoch](figures/vgg19_val_accuracy.png)');
    expect(md).toContain('(figures/vgg19_gap_cam.png)');
    expect(md).toContain('flowers17 (4 classes, 245 train / 35 val / 40 test images');
    expect(md).toContain('**Backend:** cpu');
    expect(md).toMatch(/## Failed runs\n\n- `[^`]+` \(vgg19 \/ gem \/ seed 0\): tensor shape mismatch/);
  });

  it('writes metrics.csv with one row per run × epoch and results.json with every run', async () => {
    const csv = (await readFile(path.join(out, 'metrics.csv'), 'utf8')).trimEnd().split('\n');
    expect(csv[0]).toBe(
      'run_id,backbone,head,seed,epoch,loss,accuracy,val_loss,val_accuracy,lr,images_per_s,time_s',
    );
    expect(csv.length - 1).toBe(runs.reduce((a, r) => a + r.epochs.length, 0));
    const first = csv[1].split(',');
    expect(first.slice(1, 5)).toEqual(['vgg19', 'fc', '0', '1']);
    expect(Number(first[8])).toBe(runs[0].epochs[0].val_accuracy);
    const summary = (await readFile(path.join(out, 'summary.csv'), 'utf8')).trimEnd().split('\n');
    expect(summary[0]).toBe(
      'run_id,backbone,head,seed,split_seed,split_hash,selected_epoch,val_accuracy,test_accuracy,test_loss,last_epoch,test_accuracy_last,train_accuracy,gap',
    );
    // Failed runs have no summary: one row per finished run.
    expect(summary).toHaveLength(1 + runs.filter((r) => r.summary && r.status === 'succeeded').length);
    expect(Number(summary[1].split(',')[8])).toBe(runs[0].summary!.test_accuracy);
    const json = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8'));
    expect(json).toEqual(runs.map((r) => JSON.parse(JSON.stringify(r))));
  });
});

describe('writeReport verdicts and layout', () => {
  it('says "inconclusive" when the paired interval includes 0', async () => {
    const runs = [
      ...[0.6, 0.7, 0.5].map((t, seed) => makeRun({ head: 'fc', seed, valAcc: rising(0.8, 0), testAcc: t })),
      ...[0.65, 0.6, 0.575].map((t, seed) =>
        makeRun({ head: 'gap', seed, valAcc: rising(0.8, 0), testAcc: t }),
      ),
    ];
    const out = path.join(dir, 'noisy');
    await writeReport(runs, out);
    const v = verdictOf(await readFile(path.join(out, 'report.md'), 'utf8'), 'vgg19');
    expect(v).toContain('gap vs fc: inconclusive — the interval includes 0');
    expect(v).toMatch(/about \d+ more seeds would narrow the interval to ±1 point/);
  });

  it('says so with a single seed per head', async () => {
    const runs = [
      makeRun({ head: 'gap', seed: 0, valAcc: rising(0.9, 0) }),
      makeRun({ head: 'fc', seed: 0, valAcc: rising(0.5, 0) }),
    ];
    const out = path.join(dir, 'single');
    await writeReport(runs, out);
    const md = await readFile(path.join(out, 'report.md'), 'utf8');
    expect(verdictOf(md, 'vgg19')).toContain('With one seed per head there is no interval over seeds.');
    expect(verdictOf(md, 'vgg19')).toContain('gap vs fc: one seed');
    // One seed: a mean and no interval.
    expect(tableRow(md, 'vgg19', 'gap')).toEqual([
      'gap',
      '1',
      (100 * runs[0].summary!.test_accuracy).toFixed(1),
      '–',
    ]);
  });

  it('splits figures per backbone and dataset, and adds varying config keys to metrics.csv', async () => {
    const runs = [
      makeRun({ head: 'gap', seed: 0, backbone: 'vgg19', valAcc: rising(0.8, 0), lr: 0.01 }),
      makeRun({ head: 'gap', seed: 0, backbone: 'inceptionv3', valAcc: rising(0.8, 0) }),
      makeRun({
        head: 'gap',
        seed: 0,
        backbone: 'vgg19',
        dataset: 'generated:cifar',
        valAcc: rising(0.7, 0),
      }),
    ];
    const out = path.join(dir, 'multi');
    const { files } = await writeReport(runs, out);
    const names = files.map((f) => path.relative(out, f)).filter((f) => f.endsWith('val_accuracy.png'));
    expect(names.sort()).toEqual([
      'figures/inceptionv3_flowers17_val_accuracy.png',
      'figures/vgg19_cifar4_val_accuracy.png',
      'figures/vgg19_flowers17_val_accuracy.png',
    ]);
    const header = (await readFile(path.join(out, 'metrics.csv'), 'utf8')).split('\n')[0];
    expect(header).toBe(
      'run_id,backbone,head,seed,dataset,config_lr,epoch,loss,accuracy,val_loss,val_accuracy,lr,images_per_s,time_s',
    );
  });

  it('writes the data files and a report even with no runs', async () => {
    const out = path.join(dir, 'empty');
    const { files } = await writeReport([], out);
    expect(files.map((f) => path.basename(f)).sort()).toEqual([
      'metrics.csv',
      'report.md',
      'results.json',
      'summary.csv',
    ]);
  });
});
