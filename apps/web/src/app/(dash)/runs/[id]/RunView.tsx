'use client';
import { camLabel, headColor } from '@headbench/spec';
import { formatCount, formatValue, runLine } from '@headbench/ui';
import Link from 'next/link';
import { useMemo } from 'react';
import { Chart } from '../../../../components/Chart';
import { LiveBanner, useLive } from '../../../../lib/live';
import { useRunStore } from '../../../../lib/store';
import type { RunDetail } from '../../../../lib/types';

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

export function RunView(props: {
  run: RunDetail;
  classes: string[];
  trainers: Record<string, string>;
  apiUrl: string;
}) {
  const { run } = props;
  const store = useRunStore([run], {});
  const live = useLive({
    apiUrl: props.apiUrl,
    rooms: [`run:${run.id}`],
    onUpdate: store.onUpdate,
    onSubscribing: store.onSubscribing,
    onResync: store.onResync,
  });
  const v = store.version;
  const status = store.runs.current.get(run.id)?.status ?? run.status;
  // biome-ignore lint/correctness/useExhaustiveDependencies: `v` stands for the series ref
  const charts = useMemo(() => {
    const s = store.series.current.get(run.id) ?? {};
    return Object.keys(s)
      .sort()
      .map((name) => {
        const l = runLine(s, name, name.startsWith('batch/') ? 'step' : 'epoch');
        return { name, series: [{ label: name, color: '#0072B2', width: 1.5, x: l.x, y: l.y }] };
      });
  }, [v, run.id]);
  const summary = run.summary as {
    confusion?: number[][];
    per_class_accuracy?: number[];
    shifted?: { fraction: number; pixels: number; accuracy: number; consistency?: number }[];
    test_accuracy?: number;
    selected_epoch?: number;
    cam_fidelity?: 'exact' | 'approximate' | 'none';
  } | null;
  const cls = (i: number) => props.classes[i] ?? `class ${i}`;
  const cams = run.artifacts.filter((a) => a.kind === 'cam');
  return (
    <>
      <LiveBanner state={live} />
      <p>{run.sweepId && <Link href={`/sweeps/${run.sweepId}`}>← sweep</Link>}</p>
      <h1>
        Run #{run.index} · {formatValue(run.config.backbone)} / {formatValue(run.config.head)} · seed{' '}
        {formatValue(run.config.seed)}
      </h1>
      <p>
        <span className={`status ${status}`}>{status}</span> · attempt {run.attempt}/{run.maxAttempts} ·
        trainer {run.trainerId ? (props.trainers[run.trainerId] ?? run.trainerId) : '—'} · backend{' '}
        {run.backend ?? '—'}
        {run.params && (
          <>
            {' '}
            · params {formatCount(run.params.total)} (head {formatCount(run.params.head)})
          </>
        )}
        {summary?.test_accuracy !== undefined && (
          <>
            {' '}
            · test accuracy {pct(summary.test_accuracy)} at epoch {summary.selected_epoch} (selected on
            validation)
          </>
        )}
      </p>
      {run.error && (
        <div className="banner err" role="alert">
          {run.error}
        </div>
      )}
      <h2>Series</h2>
      {store.loading && <p role="status">Loading metrics…</p>}
      {!store.loading && charts.length === 0 && <p className="muted">No metrics reported yet.</p>}
      <div className="charts">
        {charts.map((c) => (
          <Chart
            key={c.name}
            title={c.name}
            series={c.series}
            xLabel={c.name.startsWith('batch/') ? 'step' : 'epoch'}
            format={c.name.includes('accuracy') ? pct : undefined}
          />
        ))}
      </div>
      <div className="grid2">
        <section aria-label="Confusion matrix">
          <h2>Confusion matrix</h2>
          {summary?.confusion?.length ? (
            <Heatmap m={summary.confusion} label={cls} />
          ) : (
            <p className="muted">Available when the run finishes.</p>
          )}
        </section>
        <section aria-label="Per-class accuracy">
          <h2>Per-class accuracy</h2>
          {summary?.per_class_accuracy?.length ? (
            <table className="bars">
              <tbody>
                {summary.per_class_accuracy.map((a, i) => (
                  <tr key={cls(i)}>
                    <td>{cls(i)}</td>
                    <td>
                      <span className="bar" style={{ width: `${Math.round(160 * a)}px` }} /> {pct(a)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : (
            <p className="muted">Available when the run finishes.</p>
          )}
        </section>
      </div>
      <section aria-label="Robustness">
        <h2>Robustness to input shift</h2>
        {summary?.shifted?.length ? (
          <Chart
            title="Test accuracy and consistency vs shift (offset crops, 4 directions)"
            xLabel="shift (fraction of width)"
            format={pct}
            series={[
              {
                label: 'test accuracy',
                color: headColor(String(run.config.head)),
                width: 2,
                x: summary.shifted.map((s) => s.fraction),
                y: summary.shifted.map((s) => s.accuracy),
              },
              {
                label: 'same prediction as unshifted',
                color: '#0072B2',
                width: 2,
                x: summary.shifted.map((s) => s.fraction),
                y: summary.shifted.map((s) => s.consistency ?? Number.NaN),
              },
            ]}
          />
        ) : (
          <p className="muted">No shift measurements.</p>
        )}
      </section>
      <section aria-label="CAM gallery">
        <h2>Class activation maps</h2>
        {cams.length > 0 && summary?.cam_fidelity && (
          <p className="muted" data-testid="cam-fidelity">
            {camLabel(String(run.config.head))}
          </p>
        )}
        {cams.length ? (
          <div className="gallery">
            {cams.map((a) => (
              // biome-ignore lint/performance/noImgElement: artifacts are streamed through our own route handler
              <img
                key={a.id}
                src={`/api/artifacts/${a.id}?inline=${a.name.endsWith('.jpg') ? 'jpeg' : 'png'}`}
                alt={`CAM ${a.name}`}
              />
            ))}
          </div>
        ) : (
          <p className="muted">
            No CAM images (heads whose pooling feeds the classifier directly produce them).
          </p>
        )}
      </section>
      <div className="grid2">
        <section aria-label="Config">
          <h2>Config</h2>
          <table>
            <tbody>
              {Object.entries(run.config).map(([k, val]) => (
                <tr key={k}>
                  <th>{k}</th>
                  <td>{formatValue(val)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section aria-label="Events">
          <h2>Events</h2>
          {run.events.length === 0 ? (
            <p className="muted">No events.</p>
          ) : (
            <ol>
              {run.events.map((e) => (
                <li key={`${e.at}-${e.type}`}>
                  <time dateTime={e.at}>{new Date(e.at).toLocaleString()}</time> — <strong>{e.type}</strong>{' '}
                  (attempt {e.attempt})
                  {e.data && Object.keys(e.data).length ? (
                    <span className="muted">
                      {' '}
                      {Object.entries(e.data)
                        .map(
                          ([k, x]) =>
                            `${k}: ${k === 'trainerId' ? (props.trainers[String(x)] ?? x) : formatValue(x)}`,
                        )
                        .join(', ')}
                    </span>
                  ) : null}
                </li>
              ))}
            </ol>
          )}
        </section>
      </div>
      <section aria-label="Artifacts">
        <h2>Artifacts</h2>
        {run.artifacts.length === 0 ? (
          <p className="muted">No artifacts.</p>
        ) : (
          <table>
            <tbody>
              {run.artifacts.map((a) => (
                <tr key={a.id}>
                  <td>{a.kind}</td>
                  <td>
                    <a href={`/api/artifacts/${a.id}`} download={a.name}>
                      {a.name}
                    </a>
                  </td>
                  <td className="num">{formatCount(a.size)} B</td>
                  <td>{a.epoch ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

function Heatmap({ m, label }: { m: number[][]; label: (i: number) => string }) {
  return (
    <div className="table-wrap">
      <table className="heatmap" aria-label="Confusion matrix (rows: true class, columns: predicted)">
        <thead>
          <tr>
            <th>true \ pred</th>
            {m.map((_, j) => (
              <th key={label(j)} title={label(j)}>
                {j}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {m.map((row, i) => {
            const total = row.reduce((a, b) => a + b, 0) || 1;
            return (
              <tr key={label(i)}>
                <th>{label(i)}</th>
                {row.map((c, j) => {
                  const f = c / total;
                  return (
                    <td
                      key={label(j)}
                      style={{
                        background: `rgba(0,114,178,${f.toFixed(3)})`,
                        color: f > 0.5 ? '#fff' : undefined,
                      }}
                    >
                      {c}
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
