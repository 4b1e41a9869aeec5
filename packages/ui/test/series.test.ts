import { describe, expect, it } from 'vitest';
import {
  alignLines,
  axisTicks,
  band,
  differingKeys,
  ema,
  groupLines,
  lastStep,
  mergePoints,
  type Point,
  ResyncMarks,
  runLine,
} from '../src/index.ts';

const pt = (step: number, value: number, time = 1000 * step): Point => ({ step, epoch: step, value, time });

describe('series math', () => {
  it('merges live points: appends in order, dedupes resent steps (incoming wins)', () => {
    const a = [pt(1, 0.1), pt(2, 0.2)];
    expect(mergePoints(a, [pt(3, 0.3)]).map((p) => p.step)).toEqual([1, 2, 3]);
    const m = mergePoints(a, [pt(2, 0.25), pt(0, 0)]);
    expect(m.map((p) => [p.step, p.value])).toEqual([
      [0, 0],
      [1, 0.1],
      [2, 0.25],
    ]);
    expect(mergePoints(a, [])).toBe(a);
  });

  it('lastStep is the lowest per-series maximum (what a reconnect must refetch from)', () => {
    expect(lastStep(undefined)).toBe(-1);
    expect(lastStep({ loss: [pt(1, 1), pt(5, 1)], val_loss: [pt(1, 1), pt(4, 1)] })).toBe(4);
    // Named series: one without points yet (first epoch still running) means "fetch everything".
    const s = { loss: [pt(1, 1), pt(2, 1)], 'batch/loss': [pt(1, 1), pt(30, 1)] };
    expect(lastStep(s, ['loss'])).toBe(2);
    expect(lastStep(s, ['loss', 'val_loss'])).toBe(-1);
  });

  it('EMA with debiasing: weight 0 is identity, first value is kept, constant stays constant', () => {
    expect(ema([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const s = ema([1, 0, 0], 0.5);
    expect(s[0]).toBeCloseTo(1, 12);
    // acc: 0.5, 0.25, 0.125; debias by 1-0.5^n: 0.5/0.5, 0.25/0.75, 0.125/0.875
    expect(s[1]).toBeCloseTo(1 / 3, 12);
    expect(s[2]).toBeCloseTo(1 / 7, 12);
    expect(ema([2, 2, 2, 2], 0.9).every((v) => Math.abs(v - 2) < 1e-12)).toBe(true);
  });

  it('band: mean and sample std, ignoring non-finite values', () => {
    const b = band([1, 2, 3, Number.NaN]);
    expect(b.mean).toBe(2);
    expect(b.std).toBeCloseTo(1, 12);
    expect(b.n).toBe(3);
    expect(band([5]).std).toBe(0);
    expect(band([]).n).toBe(0);
  });

  it('gap line pairs train and val accuracy of the same step; x modes', () => {
    const series = {
      accuracy: [pt(1, 0.5, 10_000), pt(2, 0.8, 12_000)],
      val_accuracy: [pt(1, 0.4, 10_000), pt(2, 0.6, 12_000)],
    };
    const g = runLine(series, 'gap', 'epoch');
    expect(g.x).toEqual([1, 2]);
    expect(g.y[0]).toBeCloseTo(0.1, 12);
    expect(g.y[1]).toBeCloseTo(0.2, 12);
    expect(runLine(series, 'accuracy', 'time').x).toEqual([0, 2]);
    const withBatch = { ...series, 'batch/accuracy': [pt(10, 0.3), pt(20, 0.7)] };
    expect(runLine(withBatch, 'accuracy', 'step').x).toEqual([10, 20]);
    expect(runLine(withBatch, 'accuracy', 'epoch').x).toEqual([1, 2]);
  });

  it('groups runs by a config key: mean ± std over the runs that reached each x', () => {
    const run = (id: string, head: string, seed: number) => ({ id, config: { head, seed } });
    const groups = groupLines(
      [
        { run: run('a', 'gap', 0), line: { x: [1, 2, 3], y: [0.5, 0.6, 0.7] } },
        { run: run('b', 'gap', 1), line: { x: [1, 2], y: [0.7, 0.8] } },
        { run: run('c', 'fc', 0), line: { x: [1], y: [0.1] } },
      ],
      'head',
    );
    expect(groups.map((g) => g.key)).toEqual(['gap', 'fc']);
    const gap = groups[0];
    expect(gap.runIds).toEqual(['a', 'b']);
    expect(gap.x).toEqual([1, 2, 3]);
    expect(gap.mean[0]).toBeCloseTo(0.6, 12);
    expect(gap.std[0]).toBeCloseTo(Math.SQRT2 * 0.1, 12);
    expect(gap.n).toEqual([2, 2, 1]);
    expect(gap.std[2]).toBe(0);
  });

  it('aligns lines on the union of x with nulls, and finds differing config keys', () => {
    const { x, ys } = alignLines([
      { x: [1, 3], y: [1, 3] },
      { x: [2, 3], y: [20, Number.NaN] },
    ]);
    expect(x).toEqual([1, 2, 3]);
    expect(ys).toEqual([
      [1, null, 3],
      [null, 20, null],
    ]);
    expect(
      differingKeys([
        { head: 'fc', seed: 0, lr: 0.1 },
        { head: 'gap', seed: 0, lr: 0.1 },
      ]),
    ).toEqual(['head']);
  });

  it('axis ticks: whole numbers for epoch/step axes, multiples of the spacing otherwise', () => {
    expect(axisTicks(0.3, 7.8, 0.5, true)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(axisTicks(1, 100, 25, true)).toEqual([25, 50, 75, 100]);
    expect(axisTicks(0, 10, 2.5, true)).toEqual([0, 3, 6, 9]);
    expect(axisTicks(0, 1, 0.25, false)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(axisTicks(0.05, 0.35, 0.1, false)).toEqual([0.1, 0.2, 0.3]);
    expect(axisTicks(0, 1, 0, false)).toEqual([]);
  });
});

describe('ResyncMarks', () => {
  it('reads a resync from what was held when live updates stopped, not from later live points', () => {
    const marks = new ResyncMarks();
    expect(marks.since('a', 5)).toBe(5); // no outage: what is held
    marks.mark(
      new Map([
        ['a', 2],
        ['b', -1],
      ]),
    ); // resubscribing: a holds epoch 2, b nothing
    // A live epoch 4 of the new subscription arrives before the resync reads: epoch 3 must still be read.
    expect(marks.since('a', 4)).toBe(2);
    expect(marks.since('b', 1)).toBe(-1);
    expect(marks.since('c', 7)).toBe(7); // a run not marked (new since)
    const token = marks.token();
    // The resync fails and the socket drops again before it is retried: the lower, older mark stays.
    marks.mark(
      new Map([
        ['a', 4],
        ['b', 1],
      ]),
    );
    expect(marks.since('a', 4)).toBe(2);
    const retry = marks.token();
    marks.clear(token); // a stale resync finishing clears nothing
    expect(marks.since('a', 4)).toBe(2);
    marks.clear(retry); // the retry read from the marks: done
    expect(marks.since('a', 4)).toBe(4);
  });
});
