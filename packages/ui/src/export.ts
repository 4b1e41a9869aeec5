// Exports of the sweep view: CSV of the stored series, Markdown of the report.
import { csvCell } from '@headbench/spec';

export { csvCell };

import { buildReport, type ReportRun, reportTables } from './report.ts';
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

function mdTable(t: { header: string[]; rows: string[][] }): string[] {
  return [
    `| ${t.header.map(mdCell).join(' | ')} |`,
    `|${t.header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`),
  ];
}

export function reportMarkdown(title: string, runs: readonly ReportRun[]): string {
  const out = [`# ${title}`, ''];
  const sections = buildReport(runs);
  if (sections.length === 0) out.push('No finished or running runs yet.', '');
  for (const s of sections) {
    const t = reportTables(s);
    out.push(`## ${s.title}`, '');
    out.push('### Test accuracy at the validation-selected epoch', '', ...mdTable(t.heads), '');
    if (t.pairs.rows.length > 0) out.push('### Pairs of heads', '', ...mdTable(t.pairs), '');
    out.push(`**Verdict:** ${s.comparison.verdict}`, '');
    out.push('### Details', '', ...mdTable(t.details), '');
  }
  return out.join('\n');
}
