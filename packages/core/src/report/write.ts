import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { HEAD_NAMES } from '../config.js';
import type { RunResult } from '../results.js';
import { writeCamGrid } from './cam.js';
import { metricsCsv } from './csv.js';
import { type CurveStats, groupRuns, type RunGroup, type SeedStat } from './stats.js';
import { headColor, headDash } from './style.js';
import { heatmapSvg, type LineSeries, lineChartSvg } from './svg.js';

export interface ReportSection {
  /** File-name prefix of the section's figures: the backbone, plus the dataset when there are several. */
  prefix: string;
  title: string;
  backbone: string;
  dataset: string;
  groups: RunGroup[];
  /** Figure paths relative to the output folder, with a caption each. */
  figures: { file: string; caption: string }[];
}

/** Compact parameter count: 512, 8.72k, 20.0M. */
export function formatCount(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a < 1000) return String(v);
  if (a < 1e6) return `${(v / 1e3).toPrecision(3)}k`;
  if (a < 1e9) return `${(v / 1e6).toPrecision(3)}M`;
  return `${(v / 1e9).toPrecision(3)}G`;
}

/** A fraction in [0, 1] as "mean ± std" percent with one decimal; no ± for a single seed. */
export function formatPercent(s: SeedStat): string {
  if (s.n === 0) return '–';
  const m = (100 * s.mean).toFixed(1);
  return s.n > 1 ? `${m} ± ${(100 * s.std).toFixed(1)}` : m;
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
}

/** 0.0625 → "1/16" for the small denominators shifts use, else the decimal. */
function fractionLabel(f: number): string {
  if (f === 0) return '0';
  for (let d = 2; d <= 64; d++) {
    const num = Math.round(f * d);
    if (Math.abs(num / d - f) < 1e-9) return `${num}/${d}`;
  }
  return String(Number(f.toFixed(4)));
}

function headOrder(g: RunGroup): number {
  const i = (HEAD_NAMES as readonly string[]).indexOf(g.config.head);
  return i < 0 ? HEAD_NAMES.length : i;
}

/** Colour from the head; a dash pattern from the head, or a fresh one when two groups share a head. */
function styles(groups: RunGroup[]): { color: string; dash?: string }[] {
  const seen = new Map<string, number>();
  return groups.map((g, i) => {
    const head = g.config.head;
    const k = seen.get(head) ?? 0;
    seen.set(head, k + 1);
    return {
      color: headColor(head, i),
      dash: headDash(head, k),
    };
  });
}

function seriesOf(
  groups: RunGroup[],
  pick: (g: RunGroup) => CurveStats | { x: number[]; mean: number[]; std: number[]; n: number[] },
  scale: number,
): LineSeries[] {
  const st = styles(groups);
  return groups.map((g, i) => {
    const c = pick(g);
    const x = 'epoch' in c ? c.epoch : c.x;
    const withBand = c.n.some((k) => k > 1);
    return {
      label: g.label,
      color: st[i].color,
      dash: st[i].dash,
      x,
      y: c.mean.map((v) => v * scale),
      ...(withBand
        ? {
            lo: c.mean.map((v, j) => (v - c.std[j]) * scale),
            hi: c.mean.map((v, j) => (v + c.std[j]) * scale),
          }
        : {}),
    };
  });
}

function seedsPhrase(groups: RunGroup[]): string {
  const ns = [...new Set(groups.map((g) => g.runs.length))].sort((a, b) => a - b);
  const n = ns.length === 1 ? String(ns[0]) : `${ns[0]}–${ns[ns.length - 1]}`;
  return ns[ns.length - 1] > 1 ? `mean ± std over ${n} seeds` : `${n} seed per head (no spread)`;
}

async function png(svg: string, file: string): Promise<void> {
  await sharp(Buffer.from(svg)).png().toFile(file);
}

/** Verdict sentence from best val accuracy: the leader, and whether its lead beats the seed spread. */
export function reportVerdict(groups: RunGroup[]): string {
  const ranked = groups
    .filter((g) => g.bestValAccuracy.n > 0)
    .sort((a, b) => b.bestValAccuracy.mean - a.bestValAccuracy.mean);
  if (ranked.length === 0) return '**Verdict:** no run has a validation accuracy yet.';
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const [a, b] = ranked;
  if (!b)
    return `**Verdict:** only one head was run (${a.label}, best val accuracy ${pct(a.bestValAccuracy.mean)}); nothing to compare.`;
  const lead = a.bestValAccuracy.mean - b.bestValAccuracy.mean;
  const spread = Math.max(a.bestValAccuracy.std, b.bestValAccuracy.std);
  const head = `**Verdict:** **${a.label}** has the best mean best-val-accuracy (${pct(a.bestValAccuracy.mean)}), ${(100 * lead).toFixed(1)} points ahead of ${b.label} (${pct(b.bestValAccuracy.mean)})`;
  if (Math.min(a.bestValAccuracy.n, b.bestValAccuracy.n) < 2)
    return `${head} — within seed noise: with a single seed the seed-to-seed spread is unknown.`;
  if (lead > spread)
    return `${head}, a lead larger than the seed-to-seed spread (largest std ${(100 * spread).toFixed(1)} points).`;
  return `${head} — within seed noise (largest std ${(100 * spread).toFixed(1)} points).`;
}

function table(groups: RunGroup[]): string[] {
  const fractions = new Map<string, { fraction: number; pixels: Set<number> }>();
  for (const g of groups) {
    for (const s of g.shifted) {
      const k = s.fraction.toFixed(9);
      const e = fractions.get(k) ?? { fraction: s.fraction, pixels: new Set<number>() };
      e.pixels.add(s.pixels);
      fractions.set(k, e);
    }
  }
  const shiftCols = [...fractions.entries()].sort((a, b) => a[1].fraction - b[1].fraction);
  const header = [
    'head',
    'params (head / trainable / total)',
    'best val acc (%)',
    'epoch of best (mean)',
    'final train−val gap (%)',
  ];
  if (shiftCols.length === 0) header.push('test acc (%)');
  for (const [, e] of shiftCols) {
    header.push(
      e.pixels.size === 1
        ? `test acc @ ${[...e.pixels][0]} px shift (%)`
        : `test acc @ ${fractionLabel(e.fraction)} width shift (%)`,
    );
  }
  const lines = [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
  ];
  for (const g of groups) {
    const p = g.params;
    const cells = [
      g.label,
      `${formatCount(p.head)} / ${formatCount(p.trainable)} / ${formatCount(p.total)}`,
      formatPercent(g.bestValAccuracy),
      g.bestEpoch.n > 0 ? g.bestEpoch.mean.toFixed(1) : '–',
      formatPercent(g.finalGap),
    ];
    if (shiftCols.length === 0) cells.push(formatPercent(g.testAccuracy));
    for (const [k] of shiftCols) {
      const s = g.shifted.find((x) => x.fraction.toFixed(9) === k);
      cells.push(s ? formatPercent(s) : '–');
    }
    lines.push(`| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  return lines;
}

/**
 * Write results.json, metrics.csv, figures/*.png and report.md into `outDir`.
 * Returns the absolute paths of every file written.
 */
export async function writeReport(results: RunResult[], outDir: string): Promise<{ files: string[] }> {
  const root = path.resolve(outDir);
  const figDir = path.join(root, 'figures');
  await mkdir(figDir, { recursive: true });
  const files: string[] = [];
  const put = async (rel: string, content: string) => {
    await writeFile(path.join(root, rel), content);
    files.push(path.join(root, rel));
  };

  await put('results.json', `${JSON.stringify(results, null, 2)}\n`);
  await put('metrics.csv', metricsCsv(results));

  const live = results.filter((r) => r.status !== 'failed');
  const failed = results.filter((r) => r.status === 'failed');
  const datasetUris = [...new Set(live.map((r) => r.config.dataset))];
  const datasetName = (uri: string) => live.find((r) => r.config.dataset === uri)?.dataset?.name || uri;
  const manyDatasets = datasetUris.length > 1;
  const usedPrefixes = new Set<string>();

  const sections: ReportSection[] = [];
  for (const uri of datasetUris) {
    const forData = live.filter((r) => r.config.dataset === uri);
    for (const backbone of [...new Set(forData.map((r) => r.config.backbone))]) {
      const runs = forData.filter((r) => r.config.backbone === backbone);
      let prefix = manyDatasets ? `${slug(backbone)}_${slug(datasetName(uri))}` : slug(backbone);
      // Two dataset URIs can share a name; keep their figures apart.
      for (let i = 2; usedPrefixes.has(prefix); i++) prefix = `${prefix}-${i}`;
      usedPrefixes.add(prefix);
      const groups = groupRuns(runs).sort((a, b) => headOrder(a) - headOrder(b));
      sections.push({
        prefix,
        title: manyDatasets ? `${backbone} — ${datasetName(uri)}` : backbone,
        backbone,
        dataset: datasetName(uri),
        groups,
        figures: [],
      });
    }
  }

  for (const s of sections) await renderSection(s, root, files);

  await put('report.md', markdown(results, sections, failed));
  return { files };
}

async function renderSection(s: ReportSection, root: string, files: string[]): Promise<void> {
  const { groups } = s;
  const sub = `${s.dataset} · ${seedsPhrase(groups)}`;
  const fig = async (name: string, caption: string, svg: string) => {
    const rel = `figures/${s.prefix}_${name}.png`;
    await png(svg, path.join(root, rel));
    files.push(path.join(root, rel));
    s.figures.push({ file: rel, caption });
  };

  await fig(
    'val_accuracy',
    'Validation accuracy per epoch',
    lineChartSvg({
      title: `${s.backbone}: validation accuracy`,
      subtitle: sub,
      xLabel: 'epoch',
      yLabel: 'validation accuracy (%)',
      series: seriesOf(groups, (g) => g.curves.val_accuracy, 100),
    }),
  );

  const loss = seriesOf(groups, (g) => g.curves.val_loss, 1);
  const lossValues = loss.flatMap((l) => l.y).filter(Number.isFinite);
  // An overfitting FC head's loss can grow by orders of magnitude; a log axis keeps the others readable.
  const logY =
    lossValues.length > 0 &&
    Math.min(...lossValues) > 0 &&
    Math.max(...lossValues) / Math.min(...lossValues) > 50;
  await fig(
    'val_loss',
    'Validation loss per epoch',
    lineChartSvg({
      title: `${s.backbone}: validation loss`,
      subtitle: logY ? `${sub} · log scale` : sub,
      xLabel: 'epoch',
      yLabel: 'validation loss',
      series: loss,
      logY,
    }),
  );

  await fig(
    'gap',
    'Train − validation accuracy per epoch (overfitting)',
    lineChartSvg({
      title: `${s.backbone}: train − validation accuracy`,
      subtitle: sub,
      xLabel: 'epoch',
      yLabel: 'train − val accuracy (percentage points)',
      series: seriesOf(groups, (g) => g.curves.gap, 100),
      hLines: [0],
    }),
  );

  const shifted = groups.filter((g) => g.shifted.length > 0);
  if (shifted.length > 0) {
    await fig(
      'robustness',
      'Test accuracy vs input shift',
      lineChartSvg({
        title: `${s.backbone}: test accuracy under input shift`,
        subtitle: sub,
        xLabel: 'input shifted right by (px)',
        yLabel: 'test accuracy (%)',
        markers: true,
        series: seriesOf(
          shifted,
          (g) => ({
            x: g.shifted.map((x) => x.pixels),
            mean: g.shifted.map((x) => x.mean),
            std: g.shifted.map((x) => x.std),
            n: g.shifted.map((x) => x.n),
          }),
          100,
        ),
      }),
    );
  }

  for (const g of groups) {
    const name = slug(g.label);
    const mats = g.runs.map((r) => r.summary?.confusion).filter((m): m is number[][] => !!m && m.length > 0);
    if (mats.length > 0) {
      const rows = Math.max(...mats.map((m) => m.length));
      const cols = Math.max(...mats.flatMap((m) => m.map((r) => r.length)));
      const sum = Array.from({ length: rows }, (_, i) =>
        Array.from({ length: cols }, (_, j) => mats.reduce((acc, m) => acc + (m[i]?.[j] ?? 0), 0)),
      );
      const classes = g.runs[0].dataset?.classes ?? [];
      await fig(
        `${name}_confusion`,
        `Confusion matrix, ${g.label} (test split, summed over ${mats.length} seed${mats.length > 1 ? 's' : ''})`,
        heatmapSvg(sum, classes, classes, `${s.backbone} ${g.label}: confusion matrix`),
      );
    }

    const camRows = g.runs
      .filter((r) => (r.summary?.cams.length ?? 0) > 0)
      .map((r) => ({
        label: `seed ${r.config.seed}`,
        files: r.summary!.cams.map((c) => path.resolve(root, c)),
      }));
    if (camRows.length > 0) {
      const rel = `figures/${s.prefix}_${name}_cam.png`;
      const made = await writeCamGrid(
        camRows,
        `${s.backbone} ${g.label}: class activation maps`,
        path.join(root, rel),
      );
      if (made) {
        files.push(path.join(root, rel));
        s.figures.push({ file: rel, caption: `Class activation maps, ${g.label} (one row per seed)` });
      }
    }
  }
}

function markdown(results: RunResult[], sections: ReportSection[], failed: RunResult[]): string {
  const lines: string[] = ['# headbench report: which classification head generalises best?', ''];
  lines.push(`Generated ${new Date().toISOString().replace('T', ' ').slice(0, 16)} UTC.`, '');

  const datasets = new Map<string, RunResult['dataset']>();
  for (const r of results)
    if (r.dataset && !datasets.has(r.config.dataset)) datasets.set(r.config.dataset, r.dataset);
  const dsText = [...datasets.entries()].map(
    ([uri, d]) =>
      `${d.name} (${d.classes.length} classes, ${d.train} train / ${d.test} test images; \`${uri}\`)`,
  );
  const backends = [...new Set(results.map((r) => r.backend).filter(Boolean))];
  const count = (st: RunResult['status']) => results.filter((r) => r.status === st).length;
  lines.push(`- **Dataset${dsText.length === 1 ? '' : 's'}:** ${dsText.join('; ') || '–'}`);
  lines.push(`- **Backend${backends.length === 1 ? '' : 's'}:** ${backends.join(', ') || '–'}`);
  lines.push(
    `- **Runs:** ${results.length} (${count('succeeded')} succeeded, ${count('failed')} failed, ${count('running')} still running)`,
  );
  lines.push(
    '- Accuracies are means ± sample standard deviation over seeds; "best val acc" is each run\'s best epoch.',
    '',
  );
  lines.push(
    'Data: [`metrics.csv`](metrics.csv) (one row per run × epoch), [`results.json`](results.json).',
    '',
  );

  for (const s of sections) {
    lines.push(`## ${s.title}`, '');
    const seedList = s.groups.map((g) => `${g.label}: ${g.seeds.join(', ')}`).join('; ');
    lines.push(`Seeds — ${seedList}.`, '');
    lines.push(...table(s.groups), '');
    lines.push(reportVerdict(s.groups), '');
    for (const f of s.figures) lines.push(`![${f.caption}](${f.file})`, '');
  }

  if (failed.length > 0) {
    lines.push('## Failed runs', '');
    for (const r of failed) {
      const err = (r.error ?? 'no error message').replace(/\s+/g, ' ').trim();
      lines.push(`- \`${r.id}\` (${r.config.backbone} / ${r.config.head} / seed ${r.config.seed}): ${err}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
