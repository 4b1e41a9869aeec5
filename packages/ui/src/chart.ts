// A line chart on uPlot (canvas): many runs × many epochs stay interactive. DOM only: import from
// `@headbench/ui/chart` in client code, never on the server.
import uPlot from 'uplot';
import { alignLines, axisTicks, withAlpha } from './index.ts';

export interface ChartSeries {
  label: string;
  color: string;
  dash?: number[];
  width?: number;
  x: number[];
  y: number[];
  /** ±std band around the line, same length as x. */
  band?: { lo: number[]; hi: number[] };
}

export interface ChartOptions {
  title: string;
  width?: number;
  height?: number;
  xLabel?: string;
  yLabel?: string;
  logY?: boolean;
  /** Value formatter for the hover panel. */
  format?: (v: number) => string;
}

const fmtDefault = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4));

/**
 * Wraps one uPlot instance. `setSeries` with the same lines (labels, colours, styles) only swaps the data,
 * which is what live updates do; a different set of lines rebuilds the plot.
 */
export class LineChart {
  private plot: uPlot | null = null;
  private signature = '';
  private series: ChartSeries[] = [];
  private integerX = false;
  private readonly root: HTMLDivElement;
  private readonly plotEl: HTMLDivElement;
  private readonly hover: HTMLDivElement;
  private readonly legend: HTMLDivElement;
  private opts: Required<Omit<ChartOptions, 'xLabel' | 'yLabel'>> & Pick<ChartOptions, 'xLabel' | 'yLabel'>;

  constructor(container: HTMLElement, options: ChartOptions) {
    this.opts = {
      width: 600,
      height: 280,
      logY: false,
      format: fmtDefault,
      ...options,
    };
    this.root = document.createElement('div');
    this.root.className = 'hb-chart';
    this.plotEl = document.createElement('div');
    this.hover = document.createElement('div');
    this.hover.className = 'hb-chart-hover';
    this.hover.setAttribute('aria-live', 'off');
    this.legend = document.createElement('div');
    this.legend.className = 'hb-chart-legend';
    this.root.append(this.plotEl, this.legend, this.hover);
    container.append(this.root);
  }

  setOptions(o: Partial<ChartOptions>) {
    const rebuild = o.logY !== undefined && o.logY !== this.opts.logY;
    this.opts = { ...this.opts, ...o };
    if (rebuild) this.build();
  }

  resize(width: number) {
    if (Math.abs(width - this.opts.width) < 2) return;
    this.opts.width = width;
    this.plot?.setSize({ width, height: this.opts.height });
  }

  setSeries(series: ChartSeries[]) {
    this.series = series;
    // Epochs and steps are whole numbers: label them as such (seconds and fractions keep uPlot's ticks).
    this.integerX = series.every((s) => s.x.every(Number.isInteger));
    const sig = series
      .map((s) => `${s.label}|${s.color}|${s.dash?.join(' ')}|${s.width}|${!!s.band}`)
      .join('\n');
    if (!this.plot || sig !== this.signature) {
      this.signature = sig;
      this.build();
    } else this.plot.setData(this.data());
  }

  /** Number of drawn points (for tests and the bench). */
  get pointCount(): number {
    return this.series.reduce((a, s) => a + s.x.length, 0);
  }

  private data(): uPlot.AlignedData {
    const lines: { x: number[]; y: number[] }[] = [];
    for (const s of this.series) {
      lines.push(s);
      if (s.band) lines.push({ x: s.x, y: s.band.hi }, { x: s.x, y: s.band.lo });
    }
    const { x, ys } = alignLines(lines);
    if (this.opts.logY)
      for (const col of ys) for (let i = 0; i < col.length; i++) if (col[i]! <= 0) col[i] = null;
    return [x, ...ys] as uPlot.AlignedData;
  }

  private build() {
    this.plot?.destroy();
    const series: uPlot.Series[] = [{}];
    const bands: uPlot.Band[] = [];
    for (const s of this.series) {
      series.push({ label: s.label, stroke: s.color, width: s.width ?? 1.5, dash: s.dash, spanGaps: true });
      if (s.band) {
        const hi = series.length;
        series.push({
          label: `${s.label} +std`,
          stroke: 'transparent',
          width: 0,
          spanGaps: true,
          points: { show: false },
        });
        series.push({
          label: `${s.label} −std`,
          stroke: 'transparent',
          width: 0,
          spanGaps: true,
          points: { show: false },
        });
        bands.push({ series: [hi, hi + 1], fill: withAlpha(s.color, 0.15) });
      }
    }
    const fmt = this.opts.format;
    this.plot = new uPlot(
      {
        title: this.opts.title,
        width: this.opts.width,
        height: this.opts.height,
        series,
        bands,
        legend: { show: false },
        scales: { x: { time: false }, y: this.opts.logY ? { distr: 3 } : {} },
        axes: [
          {
            label: this.opts.xLabel,
            labelSize: 20,
            splits: (_u, _axis, min, max, incr) => axisTicks(min, max, incr, this.integerX),
          },
          { label: this.opts.yLabel, labelSize: 20, size: 56 },
        ],
        cursor: { drag: { x: true, y: false }, points: { size: 5 } },
        hooks: {
          setCursor: [
            (u) => {
              const i = u.cursor.idx;
              if (i === null || i === undefined) {
                this.hover.textContent = '';
                return;
              }
              this.showHover(u, i, fmt);
            },
          ],
        },
      },
      this.data(),
      this.plotEl,
    );
    this.renderLegend();
  }

  private showHover(u: uPlot, i: number, fmt: (v: number) => string) {
    const x = u.data[0][i];
    const rows: { label: string; color: string; v: number }[] = [];
    for (let k = 1; k < u.series.length; k++) {
      const s = u.series[k];
      if (s.width === 0) continue;
      const v = u.data[k][i];
      if (v === null || v === undefined) continue;
      rows.push({ label: String(s.label), color: String(s.stroke), v });
    }
    rows.sort((a, b) => b.v - a.v);
    this.hover.replaceChildren();
    const head = document.createElement('div');
    head.className = 'hb-chart-hover-x';
    head.textContent = `${this.opts.xLabel ?? 'x'} ${x}`;
    this.hover.append(head);
    for (const r of rows) {
      const d = document.createElement('div');
      const sw = document.createElement('span');
      sw.className = 'hb-swatch';
      sw.style.background = r.color;
      d.append(sw, `${r.label}: ${fmt(r.v)}`);
      this.hover.append(d);
    }
  }

  private renderLegend() {
    this.legend.replaceChildren();
    const main = this.series;
    if (main.length > 30) {
      this.legend.textContent = `${main.length} lines`;
      return;
    }
    for (const s of main) {
      const item = document.createElement('span');
      item.className = 'hb-legend-item';
      const sw = document.createElement('span');
      sw.className = 'hb-swatch';
      sw.style.background = s.color;
      item.append(sw, s.label);
      this.legend.append(item);
    }
  }

  /** PNG of the chart with its title and legend drawn in, on white (for reports and slides). */
  toPng(): string {
    const src = this.plot?.ctx.canvas;
    if (!src) return '';
    const dpr = src.width / this.opts.width || 1;
    const legendRows = Math.ceil(Math.min(this.series.length, 30) / 3);
    const titleH = 28 * dpr;
    const legendH = legendRows * 18 * dpr + 8 * dpr;
    const out = document.createElement('canvas');
    out.width = src.width;
    out.height = src.height + titleH + legendH;
    const ctx = out.getContext('2d')!;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.fillStyle = '#111';
    ctx.font = `bold ${14 * dpr}px sans-serif`;
    ctx.fillText(this.opts.title, 8 * dpr, 19 * dpr);
    ctx.drawImage(src, 0, titleH);
    ctx.font = `${12 * dpr}px sans-serif`;
    const colW = out.width / 3;
    this.series.slice(0, 30).forEach((s, i) => {
      const x = (i % 3) * colW + 8 * dpr;
      const y = titleH + src.height + Math.floor(i / 3) * 18 * dpr + 14 * dpr;
      ctx.fillStyle = s.color;
      ctx.fillRect(x, y - 9 * dpr, 14 * dpr, 4 * dpr);
      ctx.fillStyle = '#111';
      ctx.fillText(s.label, x + 20 * dpr, y);
    });
    return out.toDataURL('image/png');
  }

  destroy() {
    this.plot?.destroy();
    this.plot = null;
    this.root.remove();
  }
}

/** Default styles for the chart's own DOM (hover panel, legend); uPlot's stylesheet is imported by the app. */
export const CHART_CSS = `
.hb-chart { position: relative; }
.hb-chart-legend { display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 12px; margin: 4px 0; }
.hb-chart-hover { font-size: 12px; max-height: 9em; overflow: auto; columns: 3 14em; min-height: 1.2em; }
.hb-chart-hover-x { font-weight: 600; column-span: all; }
.hb-swatch { display: inline-block; width: 12px; height: 4px; margin-right: 4px; vertical-align: middle; }
`;
