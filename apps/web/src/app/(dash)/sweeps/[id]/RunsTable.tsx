'use client';
import { formatCount, formatValue, type SeriesMap, selectedOf } from '@headbench/ui';
import Link from 'next/link';
import { useMemo, useState } from 'react';
import type { Run } from '../../../../lib/types';

interface Row {
  run: Run;
  trainer: string;
  epochsDone: number;
  epochs: number;
  best: { acc: number; epoch: number } | undefined;
  params: number | undefined;
  imgPerS: number | undefined;
  etaS: number | undefined;
}

function rowOf(run: Run, series: SeriesMap | undefined, trainers: Record<string, string>): Row {
  const val = series?.val_accuracy ?? series?.val_loss ?? series?.loss ?? [];
  const last = val.at(-1);
  const epochs = Number(run.config.epochs) || 0;
  const epochsDone = run.status === 'succeeded' ? epochs : (last?.epoch ?? last?.step ?? 0);
  const ips = series?.images_per_s?.at(-1)?.value;
  let etaS: number | undefined;
  if (run.status === 'running' && val.length >= 2 && epochsDone < epochs) {
    // Mean wall time per epoch so far × epochs left.
    const per = (val[val.length - 1].time - val[0].time) / 1000 / (val.length - 1);
    etaS = per * (epochs - epochsDone);
  }
  return {
    run,
    trainer: run.trainerId ? (trainers[run.trainerId] ?? run.trainerId.slice(0, 8)) : '—',
    epochsDone,
    epochs,
    best: selectedOf({ ...run, series }),
    params: run.params?.total,
    imgPerS: ips,
    etaS,
  };
}

const duration = (s: number) =>
  s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;

type SortKey = string;

export function RunsTable(props: {
  runs: Run[];
  series: Map<string, SeriesMap>;
  version: number;
  trainers: Record<string, string>;
  varying: string[];
  selected: Set<string>;
  onSelect: (s: Set<string>) => void;
}) {
  const [sort, setSort] = useState<{ key: SortKey; dir: 1 | -1 }>({ key: 'index', dir: 1 });
  const [filter, setFilter] = useState('');
  // biome-ignore lint/correctness/useExhaustiveDependencies: `version` stands for the series map
  const rows = useMemo(
    () => props.runs.map((r) => rowOf(r, props.series.get(r.id), props.trainers)),
    [props.runs, props.version, props.trainers],
  );
  const value = (r: Row, key: SortKey): string | number => {
    switch (key) {
      case 'index':
        return r.run.index;
      case 'status':
        return r.run.status;
      case 'trainer':
        return r.trainer;
      case 'progress':
        return r.epochs ? r.epochsDone / r.epochs : 0;
      case 'best':
        return r.best?.acc ?? -1;
      case 'params':
        return r.params ?? -1;
      case 'imgs':
        return r.imgPerS ?? -1;
      case 'eta':
        return r.etaS ?? Number.POSITIVE_INFINITY;
      default:
        return formatValue(r.run.config[key]);
    }
  };
  const terms = filter.toLowerCase().split(/\s+/).filter(Boolean);
  const visible = rows
    .filter((r) => {
      if (!terms.length) return true;
      const text = [
        r.run.status,
        r.trainer,
        `#${r.run.index}`,
        ...props.varying.map((k) => `${k}=${formatValue(r.run.config[k])}`),
      ]
        .join(' ')
        .toLowerCase();
      return terms.every((t) => text.includes(t));
    })
    .sort((a, b) => {
      const x = value(a, sort.key);
      const y = value(b, sort.key);
      return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
    });
  const th = (key: SortKey, label: string, num = false) => (
    <th
      className={num ? 'num' : undefined}
      aria-sort={sort.key === key ? (sort.dir === 1 ? 'ascending' : 'descending') : 'none'}
    >
      <button
        type="button"
        onClick={() => setSort((s) => ({ key, dir: s.key === key ? (-s.dir as 1 | -1) : 1 }))}
      >
        {label}
        {sort.key === key ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}
      </button>
    </th>
  );
  const toggle = (id: string) => {
    const next = new Set(props.selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    props.onSelect(next);
  };
  return (
    <>
      <div className="controls">
        <label>
          Filter{' '}
          <input
            type="text"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
            placeholder="e.g. gap running"
            aria-label="Filter runs"
          />
        </label>
        <span className="muted">
          {visible.length} of {rows.length} runs · tick runs to compare only them in the charts
        </span>
      </div>
      <div className="table-wrap">
        <table aria-label="Runs">
          <thead>
            <tr>
              <th>
                <span className="muted">compare</span>
              </th>
              {th('index', 'run')}
              {th('status', 'status')}
              {th('trainer', 'trainer')}
              {th('progress', 'progress')}
              {th('best', 'val acc (selected epoch)', true)}
              {th('params', 'params', true)}
              {th('imgs', 'img/s', true)}
              {th('eta', 'ETA', true)}
              {props.varying.map((k) => th(k, k))}
            </tr>
          </thead>
          <tbody>
            {visible.map((r) => (
              <tr key={r.run.id} data-run={r.run.id}>
                <td>
                  <input
                    type="checkbox"
                    checked={props.selected.has(r.run.id)}
                    onChange={() => toggle(r.run.id)}
                    aria-label={`Compare run #${r.run.index}`}
                  />
                </td>
                <td>
                  <Link href={`/runs/${r.run.id}`}>#{r.run.index}</Link>
                </td>
                <td>
                  <span className={`status ${r.run.status}`} title={r.run.error ?? undefined}>
                    {r.run.status}
                  </span>
                  {r.run.attempt > 1 ? <span className="muted"> (attempt {r.run.attempt})</span> : null}
                </td>
                <td>{r.trainer}</td>
                <td>
                  <progress
                    max={r.epochs || 1}
                    value={r.epochsDone}
                    aria-label={`run #${r.run.index} progress`}
                  />{' '}
                  <span className="num">
                    {r.epochsDone}/{r.epochs}
                  </span>
                </td>
                <td className="num">
                  {r.best ? `${(100 * r.best.acc).toFixed(1)}% (${r.best.epoch})` : '—'}
                </td>
                <td className="num">{r.params !== undefined ? formatCount(r.params) : '—'}</td>
                <td className="num">{r.imgPerS !== undefined ? r.imgPerS.toFixed(0) : '—'}</td>
                <td className="num">{r.etaS !== undefined ? duration(r.etaS) : '—'}</td>
                {props.varying.map((k) => (
                  <td key={k}>{formatValue(r.run.config[k])}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
