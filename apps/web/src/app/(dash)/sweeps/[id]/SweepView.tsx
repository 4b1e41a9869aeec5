'use client';
import {
  buildReport,
  CHART_METRICS,
  colorScale,
  configValue,
  dashScale,
  differingKeys,
  ema,
  formatValue,
  groupLines,
  METRIC_TITLES,
  reportMarkdown,
  reportTables,
  runLine,
  scalarKeys,
  seriesCsv,
  type XMode,
} from '@headbench/ui';
import type { ChartSeries } from '@headbench/ui/chart';
import Link from 'next/link';
import { useEffect, useMemo, useState } from 'react';
import { Chart } from '../../../../components/Chart';
import { browserApi, download } from '../../../../lib/browser';
import { LiveBanner, useLive } from '../../../../lib/live';
import { useRunStore } from '../../../../lib/store';
import type { Run, Sweep } from '../../../../lib/types';
import { RunsTable } from './RunsTable';

// The charts and the runs table read epoch metrics only; batch metrics (many more points) stay on the run view.
const SWEEP_METRICS = ['val_accuracy', 'val_loss', 'accuracy', 'loss', 'images_per_s'];
const X_LABELS: Record<XMode, string> = { epoch: 'epoch', step: 'step', time: 'seconds' };
const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
const isAcc = (m: string) => m.includes('accuracy') || m === 'gap';

export function SweepView(props: {
  sweep: Sweep;
  initialRuns: Run[];
  trainers: Record<string, string>;
  apiUrl: string;
}) {
  const { sweep } = props;
  const store = useRunStore(props.initialRuns, { sweepId: sweep.id, names: SWEEP_METRICS });
  const live = useLive({
    apiUrl: props.apiUrl,
    rooms: [`sweep:${sweep.id}`],
    onUpdate: store.onUpdate,
    onSubscribing: store.onSubscribing,
    onResync: store.onResync,
  });
  const [tab, setTab] = useState<'charts' | 'report'>('charts');
  const [groupBy, setGroupBy] = useState('head');
  const [colorBy, setColorBy] = useState('head');
  const [dashBy, setDashBy] = useState('');
  const [smoothing, setSmoothing] = useState(0);
  const [xMode, setXMode] = useState<XMode>('epoch');
  const [logY, setLogY] = useState(false);
  const [selected, setSelected] = useState<Set<string>>(new Set());

  const v = store.version;
  // biome-ignore lint/correctness/useExhaustiveDependencies: the store mutates refs and bumps `version`
  const runs = useMemo(() => [...store.runs.current.values()], [v]);
  const configs = useMemo(() => runs.map((r) => r.config), [runs]);
  // Trainers that registered after the page loaded: fetch their names once they hold a run.
  const [trainers, setTrainers] = useState(props.trainers);
  const unknownTrainer = runs.some((r) => r.trainerId && !trainers[r.trainerId]);
  useEffect(() => {
    if (!unknownTrainer) return;
    void browserApi()
      .trainers.list.query()
      .then((list) => setTrainers(Object.fromEntries(list.map((t) => [t.id, t.name]))))
      .catch(() => {});
  }, [unknownTrainer]);
  const keys = useMemo(() => scalarKeys(configs), [configs]);
  const varying = useMemo(() => differingKeys(configs), [configs]);
  const shown = selected.size ? runs.filter((r) => selected.has(r.id)) : runs;

  // biome-ignore lint/correctness/useExhaustiveDependencies: `v` stands for the series refs
  const charts = useMemo(() => {
    const colorOf = colorScale(
      colorBy,
      shown.map((r) => formatValue(configValue(r.config, colorBy))),
    );
    const dashOf = dashScale(shown.map((r) => formatValue(configValue(r.config, dashBy))));
    const style = (cfg: Record<string, unknown>) => ({
      color: colorOf(formatValue(configValue(cfg, colorBy))),
      dash: dashBy ? dashOf(formatValue(configValue(cfg, dashBy))) : undefined,
    });
    const label = (cfg: Record<string, unknown>) =>
      varying.length
        ? varying.map((k) => (k === 'head' ? String(cfg.head) : `${k}=${formatValue(cfg[k])}`)).join(' ')
        : 'run';
    return CHART_METRICS.map((metric) => {
      const lines = shown.map((run) => {
        const l = runLine(store.series.current.get(run.id), metric, xMode);
        return { run, line: smoothing > 0 ? { x: l.x, y: ema(l.y, smoothing) } : l };
      });
      let series: ChartSeries[];
      if (groupBy) {
        const byId = new Map(shown.map((r) => [r.id, r]));
        series = groupLines(lines, groupBy)
          .filter((g) => g.x.length)
          .map((g) => {
            const first = byId.get(g.runIds[0])!;
            return {
              label: `${groupBy === 'head' ? g.key : `${groupBy}=${g.key}`} (n=${g.runIds.length})`,
              ...style(first.config),
              width: 2,
              x: g.x,
              y: g.mean,
              band:
                g.runIds.length > 1
                  ? { lo: g.mean.map((m, i) => m - g.std[i]), hi: g.mean.map((m, i) => m + g.std[i]) }
                  : undefined,
            };
          });
      } else {
        series = lines
          .filter((l) => l.line.x.length)
          .map(({ run, line }) => ({
            label: `#${run.index} ${label(run.config)}`,
            ...style(run.config),
            x: line.x,
            y: line.y,
          }));
      }
      return { metric, series };
    });
  }, [v, shown, groupBy, colorBy, dashBy, smoothing, xMode, varying]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: `v` stands for the series refs
  const reportRuns = useMemo(
    () => runs.map((r) => ({ ...r, series: store.series.current.get(r.id) })),
    [runs, v],
  );

  const counts = runs.reduce<Record<string, number>>((a, r) => {
    a[r.status] = (a[r.status] ?? 0) + 1;
    return a;
  }, {});
  const done = (counts.succeeded ?? 0) + (counts.failed ?? 0) + (counts.canceled ?? 0);
  // The page loads the sweep once; its runs stay live. An active sweep with every run finished is done
  // (the API's own rule), so the header does not keep saying "active" after the last run.
  const status = sweep.status === 'active' && runs.length > 0 && done === runs.length ? 'done' : sweep.status;

  return (
    <>
      <LiveBanner state={live} />
      {store.error && (
        <div className="banner err" role="alert">
          Could not load metrics: {store.error}
        </div>
      )}
      <h1>{sweep.name}</h1>
      <p className="muted">
        <span className={`status ${status}`} data-sweep-status={status}>
          {status}
        </span>{' '}
        · {runs.length} runs · {done} done · {counts.running ?? 0} running · {counts.queued ?? 0} queued ·{' '}
        {counts.failed ?? 0} failed{' '}
        <progress max={runs.length || 1} value={done} aria-label={`${done} of ${runs.length} runs done`} />{' '}
        <button
          type="button"
          onClick={() =>
            download(
              `${sweep.name}.sweep.json`,
              `${JSON.stringify(sweep.spec, null, 2)}\n`,
              'application/json',
            )
          }
        >
          Download spec
        </button>
      </p>
      <div className="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={tab === 'charts'} onClick={() => setTab('charts')}>
          Charts &amp; runs
        </button>
        <button type="button" role="tab" aria-selected={tab === 'report'} onClick={() => setTab('report')}>
          Report
        </button>
      </div>
      {runs.length === 0 && <p className="muted">This sweep has no runs.</p>}
      {tab === 'charts' ? (
        <>
          <fieldset className="controls" aria-label="Chart settings">
            <KeySelect
              label="Group by"
              value={groupBy}
              onChange={setGroupBy}
              keys={keys}
              none="(none: one line per run)"
            />
            <KeySelect label="Colour by" value={colorBy} onChange={setColorBy} keys={keys} />
            <KeySelect label="Line style by" value={dashBy} onChange={setDashBy} keys={keys} none="(solid)" />
            <label>
              Smoothing
              <input
                type="range"
                min={0}
                max={0.95}
                step={0.05}
                value={smoothing}
                onChange={(e) => setSmoothing(Number(e.target.value))}
                aria-label="EMA smoothing"
              />
              <span className="num">{smoothing.toFixed(2)}</span>
            </label>
            <label>
              X axis
              <select value={xMode} onChange={(e) => setXMode(e.target.value as XMode)} aria-label="X axis">
                <option value="epoch">epoch</option>
                <option value="step">step</option>
                <option value="time">wall time</option>
              </select>
            </label>
            <label>
              <input
                type="checkbox"
                checked={logY}
                onChange={(e) => setLogY(e.target.checked)}
                aria-label="Log scale"
              />{' '}
              log scale
            </label>
            <button
              type="button"
              onClick={() => download(`${sweep.name}-series.csv`, seriesCsv(reportRuns), 'text/csv')}
            >
              Export CSV
            </button>
            {selected.size > 0 && (
              <button type="button" onClick={() => setSelected(new Set())}>
                Show all runs ({selected.size} selected)
              </button>
            )}
          </fieldset>
          {store.loading && (
            <p className="muted" role="status">
              Loading metrics…
            </p>
          )}
          <div className="charts">
            {charts.map((c) => (
              <Chart
                key={c.metric}
                title={METRIC_TITLES[c.metric] ?? c.metric}
                series={c.series}
                xLabel={X_LABELS[xMode]}
                logY={logY}
                format={isAcc(c.metric) ? pct : undefined}
              />
            ))}
          </div>
          <h2>Runs</h2>
          <RunsTable
            runs={runs}
            series={store.series.current}
            version={v}
            trainers={trainers}
            varying={varying}
            selected={selected}
            onSelect={setSelected}
          />
        </>
      ) : (
        <Report title={sweep.name} runs={reportRuns} />
      )}
    </>
  );
}

/** A config-key picker of the chart settings; `none` adds an empty choice with that label. */
function KeySelect(props: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  keys: string[];
  none?: string;
}) {
  return (
    <label>
      {props.label}
      <select value={props.value} onChange={(e) => props.onChange(e.target.value)} aria-label={props.label}>
        {props.none !== undefined && <option value="">{props.none}</option>}
        {props.keys.map((k) => (
          <option key={k} value={k}>
            {k}
          </option>
        ))}
      </select>
    </label>
  );
}

function ReportTable({ label, table }: { label: string; table: { header: string[]; rows: string[][] } }) {
  return (
    <div className="table-wrap">
      <table aria-label={label}>
        <thead>
          <tr>
            {table.header.map((h) => (
              <th key={h}>{h}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {table.rows.map((r) => (
            <tr key={r[0]}>
              {r.map((c, i) => (
                <td key={table.header[i]} className={i ? 'num' : undefined}>
                  {c}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Report({ title, runs }: { title: string; runs: Parameters<typeof buildReport>[0] }) {
  const sections = useMemo(() => buildReport(runs), [runs]);
  return (
    <section aria-label="Report">
      <div className="controls">
        <button
          type="button"
          onClick={() => download(`${title}-report.md`, reportMarkdown(title, runs), 'text/markdown')}
        >
          Export Markdown
        </button>
      </div>
      {sections.length === 0 && (
        <p className="muted">No results yet: the report fills in as runs report metrics.</p>
      )}
      {sections.map((s) => {
        const t = reportTables(s);
        const byId = new Map(runs.map((r) => [r.id, r]));
        const fig = (metric: 'val_accuracy' | 'val_loss'): ChartSeries[] =>
          s.groups.map((g) => {
            const [line] = groupLines(
              g.runIds.map((id) => ({
                run: byId.get(id)!,
                line: runLine(byId.get(id)!.series, metric, 'epoch'),
              })),
              'head',
            );
            const color = colorScale(
              'head',
              s.groups.map((x) => x.head),
            )(g.head);
            return { label: g.label, color, width: 2, x: line?.x ?? [], y: line?.mean ?? [] };
          });
        return (
          <div key={s.title} data-section={s.backbone}>
            <h2>{s.title}</h2>
            {s.pending > 0 && (
              <p className="muted" data-testid="pending">
                {s.pending} run{s.pending === 1 ? '' : 's'} still training, left out of the statistics.
              </p>
            )}
            <p className="verdict" data-testid="verdict">
              {s.comparison.verdict}
            </p>
            <h3>Test accuracy at the validation-selected epoch</h3>
            <ReportTable label={`Heads ${s.title}`} table={t.heads} />
            {t.pairs.rows.length > 0 && (
              <>
                <h3>Pairs of heads</h3>
                <p className="muted">
                  Difference A − B paired by seed with its 95% t-interval; per-image exact McNemar test on the
                  shared test images, pooled over seeds, Holm-adjusted across the pairs.
                </p>
                <ReportTable label={`Pairs ${s.title}`} table={t.pairs} />
              </>
            )}
            <div className="grid2">
              <Chart
                title={`${s.title}: validation accuracy`}
                series={fig('val_accuracy')}
                xLabel="epoch"
                format={pct}
              />
              <Chart title={`${s.title}: validation loss`} series={fig('val_loss')} xLabel="epoch" />
            </div>
            <h3>Details</h3>
            <ReportTable label={`Details ${s.title}`} table={t.details} />
          </div>
        );
      })}
      <p className="muted">
        Validation picks each run&apos;s epoch; the test set is read once training ends. CAM: exact where the
        class score is the map&apos;s mean (gap, nin, gem on f^p), approximate for max pooling.{' '}
        <Link href="/sweeps">All sweeps</Link>
      </p>
    </section>
  );
}
