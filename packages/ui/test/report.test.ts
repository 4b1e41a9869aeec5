import { encodeCorrectness } from '@headbench/spec';
import { describe, expect, it } from 'vitest';
import {
  buildReport,
  csvCell,
  type ReportRun,
  reportMarkdown,
  reportTables,
  seriesCsv,
} from '../src/index.ts';

const base = { dataset: 'generated:flowers17', backbone: 'vgg16', optimizer: 'adam', lr: 0.001 };
const IMAGES = 20;
/** A finished run whose first `k` of 20 test images are right (per-image records pair exactly). */
function run(id: string, head: string, seed: number, k: number, extra: Partial<ReportRun> = {}): ReportRun {
  return {
    id,
    config: { ...base, head, seed },
    status: 'succeeded',
    params: { head: head === 'fc' ? 1000 : 10, trainable: 10, frozen: 0, total: 20_000_000, backbone: 1 },
    series: {
      val_accuracy: [
        { step: 1, epoch: 1, value: 0.5, time: 1 },
        { step: 2, epoch: 2, value: 0.6, time: 2 },
      ],
    },
    summary: {
      selected_epoch: 2,
      val_accuracy: 0.6,
      test_accuracy: k / IMAGES,
      test_accuracy_last: k / IMAGES - 0.05,
      test_correct: encodeCorrectness(Array.from({ length: IMAGES }, (_, i) => i < k)),
      test_count: IMAGES,
      split_hash: `s${seed}`,
      gap: 0.1,
      shifted: [
        { fraction: 0.125, pixels: 4, accuracy: 0.6, consistency: 0.9, directions: [0.6, 0.6, 0.6, 0.6] },
      ],
    },
    ...extra,
  };
}

describe('report', () => {
  it('groups seeds per head and reports test accuracy at the selected epoch with a 95% t-interval', () => {
    const [section] = buildReport([run('a', 'gap', 0, 18), run('b', 'gap', 1, 16), run('c', 'fc', 0, 14)]);
    expect(section.backbone).toBe('vgg16');
    const gap = section.groups.find((g) => g.head === 'gap')!;
    expect(gap.seeds).toEqual([0, 1]);
    expect(gap.testAccuracy.mean).toBeCloseTo(0.85, 12);
    // s = √0.005, t(0.975, 1) = 12.7062: half-width 12.7062 · s / √2.
    expect(gap.testAccuracy.hi - 0.85).toBeCloseTo((12.7062 * Math.sqrt(0.005)) / Math.sqrt(2), 3);
    expect(gap.selectedEpoch.mean).toBe(2);
    expect(gap.camFidelity).toBe('exact');
    const t = reportTables(section);
    expect(t.heads.rows[0]).toEqual(['gap', '2', '85.0', expect.stringMatching(/^\d+\.\d\.\.\d+\.\d$/)]);
    expect(t.heads.rows[1]).toEqual(['fc', '1', '70.0', '–']);
  });

  it('leaves failed runs out and counts the ones still training', () => {
    const training: ReportRun = { ...run('t', 'gap', 2, 10), status: 'running', summary: null };
    const failed = run('f', 'fc', 0, 20, { status: 'failed' });
    const [section] = buildReport([run('a', 'gap', 0, 18), training, failed]);
    expect(section.groups).toHaveLength(1);
    expect(section.pending).toBe(1);
    expect(section.comparison.verdict).toContain('1 run still training is left out');
  });

  it('verdict: A beats B with interval and adjusted p, or inconclusive, or one seed', () => {
    const clear = buildReport([
      run('a', 'gap', 0, 18),
      run('b', 'gap', 1, 19),
      run('e', 'gap', 2, 18),
      run('c', 'fc', 0, 10),
      run('d', 'fc', 1, 12),
      run('f', 'fc', 2, 11),
    ])[0];
    expect(clear.comparison.verdict).toMatch(
      /gap beats fc by 36\.7 points \(95% CI [\d.]+\.\.[\d.]+, adjusted p < 0\.001\)/,
    );
    expect(reportTables(clear).pairs.rows[0]).toEqual([
      'gap − fc',
      '3',
      '36.7',
      expect.stringMatching(/\.\./),
      '22 / 0',
      '< 0.001',
      'gap beats fc',
    ]);
    const noisy = buildReport([
      run('a', 'gap', 0, 18),
      run('b', 'gap', 1, 10),
      run('c', 'fc', 0, 12),
      run('d', 'fc', 1, 14),
    ])[0];
    expect(noisy.comparison.verdict).toContain('inconclusive — the interval includes 0');
    const single = buildReport([run('a', 'gap', 0, 18), run('c', 'fc', 0, 14)])[0];
    expect(single.comparison.verdict).toContain('With one seed per head there is no interval over seeds.');
  });

  it('one section per backbone', () => {
    const other = run('z', 'gap', 0, 10);
    other.config = { ...other.config, backbone: 'smallcnn' };
    expect(buildReport([run('a', 'gap', 0, 18), other]).map((s) => s.title)).toEqual(['vgg16', 'smallcnn']);
  });

  it('exports CSV (long format, differing config columns, quoting) and Markdown with the same tables', () => {
    expect(csvCell('a,"b"')).toBe('"a,""b"""');
    const csv = seriesCsv([run('a', 'gap', 0, 18), run('c', 'fc', 0, 14)])
      .trim()
      .split('\n');
    expect(csv[0]).toBe('run,head,metric,step,epoch,value,time');
    expect(csv).toHaveLength(1 + 2 * 2);
    const md = reportMarkdown('My sweep', [run('a', 'gap', 0, 18), run('c', 'fc', 0, 14)]);
    expect(md).toContain('# My sweep');
    expect(md).toContain('## vgg16');
    expect(md).toContain('| gap | 1 | 90.0 | – |');
    expect(md).toContain('| gap | 10 / 20.00M | 2.0 | 60.0 | 85.0 | 10.0 | exact |');
    expect(md).toContain('**Verdict:** Highest mean test accuracy at the selected epoch: gap (90.0%).');
  });
});
