import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { camFidelity, camLabel, comparisonTables, packagedWeights } from '@headbench/spec';
import sharp from 'sharp';
import { HEAD_NAMES } from '../config.js';
import type { RunResult } from '../results.js';
import { writeCamGrid } from './cam.js';
import { metricsCsv, summaryCsv } from './csv.js';
import { type CurveStats, compareGroups, groupRuns, type RunGroup, type SeedStat } from './stats.js';
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

const capitalise = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

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

function mdTable(header: string[], rows: string[][], numericFrom = 1): string[] {
  const cell = (c: string) => c.replace(/\|/g, '\\|');
  return [
    `| ${header.map(cell).join(' | ')} |`,
    `|${header.map((_, i) => (i < numericFrom ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ];
}

/** Mean with its 95% interval in percent: "45.2 (41.0..49.4)"; just the mean for one seed. */
function withInterval(s: SeedStat, scale = 100): string {
  if (s.n === 0) return '–';
  const m = (scale * s.mean).toFixed(1);
  return Number.isFinite(s.lo) ? `${m} (${(scale * s.lo).toFixed(1)}..${(scale * s.hi).toFixed(1)})` : m;
}

/** Per head: parameters, the selected epoch, validation and last-epoch test accuracy, the generalisation gap. */
function detailsTable(groups: RunGroup[]): string[] {
  return mdTable(
    [
      'head',
      'params (head / trainable / total)',
      'selected epoch (mean)',
      'val acc @ selected (%)',
      'test acc @ last epoch (%)',
      'train (inference) − test gap (points)',
    ],
    groups.map((g) => [
      g.label,
      `${formatCount(g.params.head)} / ${formatCount(g.params.trainable)} / ${formatCount(g.params.total)}`,
      g.selectedEpoch.n > 0 ? g.selectedEpoch.mean.toFixed(1) : '–',
      withInterval(g.valAccuracy),
      withInterval(g.testAccuracyLast),
      withInterval(g.gap),
    ]),
  );
}

/** Per head and shift: accuracy and prediction consistency with the unshifted crop (mean over seeds). */
function robustnessTable(groups: RunGroup[]): string[] {
  const fractions = new Map<string, { fraction: number; pixels: Set<number> }>();
  for (const g of groups) {
    for (const s of g.shifted) {
      const k = s.fraction.toFixed(9);
      const e = fractions.get(k) ?? { fraction: s.fraction, pixels: new Set<number>() };
      e.pixels.add(s.pixels);
      fractions.set(k, e);
    }
  }
  const cols = [...fractions.entries()].sort((a, b) => a[1].fraction - b[1].fraction);
  if (cols.length === 0) return [];
  const header = [
    'head',
    ...cols.map(([, e]) => {
      const px = e.pixels.size === 1 ? ` (${[...e.pixels][0]} px)` : '';
      return `${fractionLabel(e.fraction)} width${px}: acc / consistent (%)`;
    }),
  ];
  return mdTable(
    header,
    groups.map((g) => [
      g.label,
      ...cols.map(([k]) => {
        const s = g.shifted.find((x) => x.fraction.toFixed(9) === k);
        return s ? `${formatPercent(s)} / ${formatPercent(s.consistency)}` : '–';
      }),
    ]),
  );
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
  await put('summary.csv', summaryCsv(results));

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
        xLabel: 'content shifted by (px; offset crops, mean of 4 directions)',
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
        `${s.backbone} ${g.label}: ${camFidelity(g.config.head) === 'approximate' ? 'approximate ' : ''}class activation maps`,
        path.join(root, rel),
      );
      if (made) {
        files.push(path.join(root, rel));
        s.figures.push({
          file: rel,
          caption: `${capitalise(camLabel(g.config.head))}, ${g.label} (one row per seed)`,
        });
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
      `${d.name} (${d.classes.length} classes, ${d.train} train / ${d.val ?? 0} val / ${d.test} test images; \`${uri}\`)`,
  );
  const backends = [...new Set(results.map((r) => r.backend).filter(Boolean))];
  const count = (st: RunResult['status']) => results.filter((r) => r.status === st).length;
  lines.push(`- **Dataset${dsText.length === 1 ? '' : 's'}:** ${dsText.join('; ') || '–'}`);
  lines.push(`- **Backend${backends.length === 1 ? '' : 's'}:** ${backends.join(', ') || '–'}`);
  lines.push(
    `- **Runs:** ${results.length} (${count('succeeded')} succeeded, ${count('failed')} failed, ${count('running')} still running and left out of the statistics)`,
  );
  const splits = [
    ...new Set(
      results.flatMap((r) =>
        r.provenance ? [`seed ${r.provenance.split.seed} (${r.provenance.split.hash})`] : [],
      ),
    ),
  ];
  if (splits.length > 0)
    lines.push(
      `- **Split${splits.length === 1 ? '' : 's'}:** ${splits.length > 4 ? `${splits.length} repeated splits, one per seed` : splits.join(', ')}`,
    );
  const weights = new Map<string, NonNullable<RunResult['provenance']>['weights']>();
  for (const r of results) if (r.provenance) weights.set(r.provenance.weights.source, r.provenance.weights);
  for (const w of weights.values()) {
    if (w.source === 'none') continue;
    const p = w.package;
    const origin = packagedWeights(w.source)?.origin;
    lines.push(
      `- **Weights:** \`${w.source}\`${p ? ` — ${p.name}@${p.version} \`${p.model}\`, weight bytes sha256 ${p.sha256}` : ''}; values sha256 ${w.contentHash}${origin ? `. ${origin}` : ''}`,
    );
  }
  const prov = results.find((r) => r.provenance)?.provenance;
  if (prov)
    lines.push(
      `- **Machine path:** ${prov.backend}, ${prov.threads} thread${prov.threads === 1 ? '' : 's'}${prov.simd !== undefined ? `, SIMD ${prov.simd ? 'on' : 'off'}, FMA ${prov.fma ? 'on' : 'off'}` : ''}; Node ${prov.node}, tfjs ${prov.tfjs}; feature cache ${prov.featureCache}`,
    );
  lines.push(
    "- Three sets: validation picks each run's epoch (and drives early stopping); the test set is read only after training, at that epoch and at the last. Tables give means over seeds with 95% t-intervals (lo..hi).",
    '',
  );
  lines.push(
    'Data: [`summary.csv`](summary.csv) (one row per finished run: split, selected epoch, test accuracy there and at the last epoch, gap), [`metrics.csv`](metrics.csv) (one row per run × epoch), [`results.json`](results.json).',
    '',
  );

  for (const s of sections) {
    lines.push(`## ${s.title}`, '');
    const seedList = s.groups.map((g) => `${g.label}: ${g.seeds.join(', ')}`).join('; ');
    lines.push(`Seeds — ${seedList}.`, '');
    const comparison = compareGroups(s.groups);
    const t = comparisonTables(comparison);
    lines.push('### Test accuracy at the validation-selected epoch', '');
    lines.push(...mdTable(t.heads.header, t.heads.rows), '');
    if (t.pairs.rows.length > 0) {
      lines.push(
        '### Pairs of heads',
        '',
        'Difference A − B paired by seed, with its 95% t-interval; per-image exact McNemar test on the shared test images, pooled over seeds, Holm-adjusted across the pairs.',
        '',
      );
      lines.push(...mdTable(t.pairs.header, t.pairs.rows), '');
    }
    lines.push(`**Verdict:** ${comparison.verdict}`, '');
    lines.push('### Details', '', ...detailsTable(s.groups), '');
    const robustness = robustnessTable(s.groups);
    if (robustness.length > 0) {
      lines.push(
        '### Robustness to shifts',
        '',
        "Offset crops of the test image resized larger (content moved right, left, down and up; accuracy averaged over the four), and the share of predictions equal to the unshifted crop's.",
        '',
        ...robustness,
        '',
      );
    }
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
