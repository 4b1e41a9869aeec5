import { describe, expect, it } from 'vitest';
import {
  buildReport,
  csvCell,
  type ReportRun,
  reportMarkdown,
  reportTable,
  seriesCsv,
  verdict,
} from '../src/index.ts';

const base = { dataset: 'generated:flowers17', backbone: 'vgg16', optimizer: 'adam', lr: 0.001 };
function run(
  id: string,
  head: string,
  seed: number,
  best: number,
  extra: Partial<ReportRun> = {},
): ReportRun {
  return {
    id,
    config: { ...base, head, seed },
    status: 'succeeded',
    params: { head: head === 'fc' ? 1000 : 10, trainable: 10, frozen: 0, total: 20_000_000, backbone: 1 },
    series: {
      val_accuracy: [
        { step: 1, epoch: 1, value: best - 0.1, time: 1 },
        { step: 2, epoch: 2, value: best, time: 2 },
        { step: 3, epoch: 3, value: best - 0.05, time: 3 },
      ],
      accuracy: [
        { step: 1, epoch: 1, value: 0.5, time: 1 },
        { step: 3, epoch: 3, value: 0.95, time: 3 },
      ],
    },
    ...extra,
  };
}

describe('report', () => {
  it('groups seeds per head, takes best val accuracy / epoch / final gap from the series', () => {
    const [section] = buildReport([run('a', 'gap', 0, 0.9), run('b', 'gap', 1, 0.8), run('c', 'fc', 0, 0.7)]);
    expect(section.backbone).toBe('vgg16');
    const gap = section.groups.find((g) => g.head === 'gap')!;
    expect(gap.seeds).toEqual([0, 1]);
    expect(gap.bestValAccuracy.mean).toBeCloseTo(0.85, 12);
    expect(gap.bestValAccuracy.std).toBeCloseTo(Math.sqrt(0.005), 12);
    expect(gap.bestEpoch.mean).toBe(2);
    // final gap: accuracy 0.95 at step 3 minus val accuracy at step 3 (best − 0.05)
    expect(gap.finalGap.values[0]).toBeCloseTo(0.95 - 0.85, 12);
    expect(gap.label).toBe('gap');
  });

  it('prefers the run summary when the run finished; failed runs are left out', () => {
    const done = run('a', 'gap', 0, 0.5, {
      summary: {
        best_val_accuracy: 0.77,
        best_epoch: 7,
        final_gap: 0.01,
        test_accuracy: 0.7,
        shifted: [{ fraction: 0.125, pixels: 4, accuracy: 0.6 }],
      },
    });
    const failed = run('f', 'fc', 0, 0.99, { status: 'failed' });
    const [section] = buildReport([done, failed]);
    expect(section.groups).toHaveLength(1);
    expect(section.groups[0].bestValAccuracy.values).toEqual([0.77]);
    expect(section.groups[0].bestEpoch.values).toEqual([7]);
    const t = reportTable(section);
    expect(t.header).toContain('acc @ 4px shift (%)');
    expect(t.rows[0]).toEqual(['gap', '10 / 20.00M', '77.0', '7.0', '1.0', '60.0']);
  });

  it('verdict: best head, and whether the lead beats the seed-to-seed spread', () => {
    const clear = buildReport([
      run('a', 'gap', 0, 0.9),
      run('b', 'gap', 1, 0.91),
      run('c', 'fc', 0, 0.7),
      run('d', 'fc', 1, 0.72),
    ])[0];
    expect(clear.verdict).toMatch(
      /^vgg16: gap is best \(90\.5% best val accuracy\), 19\.5 points ahead of fc, a lead larger/,
    );
    const noisy = buildReport([
      run('a', 'gap', 0, 0.9),
      run('b', 'gap', 1, 0.7),
      run('c', 'fc', 0, 0.79),
      run('d', 'fc', 1, 0.79),
    ])[0];
    expect(noisy.verdict).toMatch(/within the seed-to-seed spread/);
    const single = buildReport([run('a', 'gap', 0, 0.9), run('c', 'fc', 0, 0.7)])[0];
    expect(single.verdict).toMatch(/one seed only/);
    expect(verdict('x', [])).toBe('x: no validation accuracy reported yet.');
  });

  it('one section per backbone', () => {
    const other = run('z', 'gap', 0, 0.5);
    other.config = { ...other.config, backbone: 'smallcnn' };
    expect(buildReport([run('a', 'gap', 0, 0.9), other]).map((s) => s.title)).toEqual(['vgg16', 'smallcnn']);
  });

  it('exports CSV (long format, differing config columns, quoting) and Markdown', () => {
    expect(csvCell('a,"b"')).toBe('"a,""b"""');
    const csv = seriesCsv([run('a', 'gap', 0, 0.9), run('c', 'fc', 0, 0.7)])
      .trim()
      .split('\n');
    expect(csv[0]).toBe('run,head,metric,step,epoch,value,time');
    expect(csv).toHaveLength(1 + 2 * 5);
    expect(csv[1]).toBe(`a,gap,accuracy,1,1,0.5,${new Date(1).toISOString()}`);
    const md = reportMarkdown('My sweep', [run('a', 'gap', 0, 0.9), run('c', 'fc', 0, 0.7)]);
    expect(md).toContain('# My sweep');
    expect(md).toContain('## vgg16');
    expect(md).toContain('| gap | 10 / 20.00M | 90.0 | 2.0 | 10.0 | – |');
    expect(md).toContain('**Verdict:** vgg16: gap is best');
  });
});
