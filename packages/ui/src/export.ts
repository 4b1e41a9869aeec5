// Exports of the sweep view: CSV of the stored series, Markdown of the report.
import { csvCell } from '@headbench/spec';

export { csvCell };

import { buildReport, type ReportRun, reportTable } from './report.ts';
import { differingKeys, type SeriesMap } from './series.ts';

/**
 * Long format, one row per point: run, the config keys that differ between runs, metric, step, epoch,
 * value, time (ISO). Metrics sorted by name, points by step.
 */
export function seriesCsv(
  runs: readonly { id: string; config: Record<string, unknown>; series?: SeriesMap }[],
): string {
  const keys = differingKeys(runs.map((r) => r.config));
  const lines = [['run', ...keys, 'metric', 'step', 'epoch', 'value', 'time'].join(',')];
  for (const r of runs) {
    const cfg = keys.map((k) => csvCell(r.config[k]));
    for (const name of Object.keys(r.series ?? {}).sort())
      for (const p of r.series![name])
        lines.push(
          [r.id, ...cfg, csvCell(name), p.step, p.epoch ?? '', p.value, new Date(p.time).toISOString()].join(
            ',',
          ),
        );
  }
  return `${lines.join('\n')}\n`;
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|');

export function reportMarkdown(title: string, runs: readonly ReportRun[]): string {
  const out = [`# ${title}`, ''];
  const sections = buildReport(runs);
  if (sections.length === 0) out.push('No finished or running runs yet.', '');
  for (const s of sections) {
    const { header, rows } = reportTable(s);
    out.push(`## ${s.title}`, '');
    out.push(`| ${header.map(mdCell).join(' | ')} |`);
    out.push(`|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`);
    for (const r of rows) out.push(`| ${r.map(mdCell).join(' | ')} |`);
    out.push('', `**Verdict:** ${s.verdict}`, '');
  }
  return out.join('\n');
}
