import { FONT_FAMILY } from './style.js';

export interface LineSeries {
  label: string;
  color: string;
  x: number[];
  y: number[];
  /** Lower and upper edge of a band around the line (e.g. mean ± std); drawn translucent. */
  lo?: number[];
  hi?: number[];
  /** SVG stroke-dasharray, e.g. "6 3". */
  dash?: string;
}

export interface LineChartSpec {
  title: string;
  /** Smaller second line under the title. */
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  logY?: boolean;
  /** Default true. */
  legend?: boolean;
  /** Dots at every data point (for charts with few x values). */
  markers?: boolean;
  /** Dashed horizontal reference lines (e.g. y = 0). */
  hLines?: number[];
  /** Default 900 × 540. */
  width?: number;
  height?: number;
}

export interface Ticks {
  min: number;
  max: number;
  ticks: number[];
  /** Decimals needed to print the ticks. */
  decimals: number;
}

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Rough advance width of DejaVu Sans text (≈0.62 em per glyph); enough to size margins and boxes. */
export function textWidth(s: string, fontSize: number): number {
  return s.length * fontSize * 0.62;
}

/** 1, 2 or 5 × 10^k closest above span / target. */
function niceStep(span: number, target: number): number {
  const raw = span / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const f = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  return f * mag;
}

/** Round-number ticks covering [min, max]; the domain is widened to the outer ticks. */
export function niceTicks(min: number, max: number, target = 6, integer = false): Ticks {
  let lo = min;
  let hi = max;
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  // A flat line, or one flat but for rounding (seed means of equal values differ in the last bit), still
  // needs a visible range around it: ticks a few ulps apart would put lo/step past 2^53, where i++ stops
  // counting and the tick loop below never ends.
  if (hi - lo <= Math.max(Math.abs(lo), Math.abs(hi)) * 1e-9) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  let step = niceStep(hi - lo, target);
  if (integer) step = Math.max(1, Math.round(step));
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toFixed(decimals + 2)));
  return { min: ticks[0], max: ticks[ticks.length - 1], ticks, decimals };
}

/** Decade ticks for a log axis, with 2 and 5 in between when the range is narrow. */
export function logTicks(min: number, max: number): Ticks {
  const lo = Math.floor(Math.log10(min > 0 && Number.isFinite(min) ? min : 1));
  let hi = Math.ceil(Math.log10(max > 0 && Number.isFinite(max) ? max : 10));
  if (hi <= lo) hi = lo + 1;
  const ticks: number[] = [];
  for (let k = lo; k <= hi; k++) {
    ticks.push(10 ** k);
    if (hi - lo <= 2 && k < hi) ticks.push(2 * 10 ** k, 5 * 10 ** k);
  }
  // Trim decades the data never reaches beyond the nearest 2/5 tick.
  const sorted = ticks.sort((a, b) => a - b);
  while (sorted.length > 2 && sorted[1] <= min) sorted.shift();
  while (sorted.length > 2 && sorted[sorted.length - 2] >= max) sorted.pop();
  return { min: sorted[0], max: sorted[sorted.length - 1], ticks: sorted, decimals: 0 };
}

export function formatNumber(v: number, decimals: number): string {
  const minus = v < 0 ? '\u2212' : '';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return minus + a.toExponential(0).replace('e+', 'e');
  if (a >= 1e4 && decimals === 0) return minus + `${Number((a / 1000).toFixed(1))}k`;
  return minus + a.toFixed(decimals);
}

function logTickLabel(v: number): string {
  return formatNumber(v, Math.max(0, -Math.floor(Math.log10(v) + 1e-9)));
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

function n(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function text(
  x: number,
  y: number,
  content: string,
  attrs: {
    size: number;
    anchor?: 'start' | 'middle' | 'end';
    weight?: string;
    fill?: string;
    extra?: string;
  },
): string {
  return (
    `<text x="${n(x)}" y="${n(y)}" font-size="${attrs.size}" text-anchor="${attrs.anchor ?? 'start'}"` +
    `${attrs.weight ? ` font-weight="${attrs.weight}"` : ''} fill="${attrs.fill ?? '#222'}"` +
    `${attrs.extra ? ` ${attrs.extra}` : ''}>${escapeXml(content)}</text>`
  );
}

/** Indices split into runs where every given array holds a finite number. */
function finiteRuns(len: number, ...arrays: number[][]): number[][] {
  const runs: number[][] = [];
  let cur: number[] = [];
  for (let i = 0; i < len; i++) {
    if (arrays.every((a) => Number.isFinite(a[i]))) cur.push(i);
    else if (cur.length > 0) {
      runs.push(cur);
      cur = [];
    }
  }
  if (cur.length > 0) runs.push(cur);
  return runs;
}

/** A line chart with optional ±bands, legend, nice ticks and gridlines, as a standalone SVG document. */
export function lineChartSvg(spec: LineChartSpec): string {
  const W = spec.width ?? 900;
  const H = spec.height ?? 540;
  const logY = spec.logY ?? false;
  const valid = (v: number) => Number.isFinite(v) && (!logY || v > 0);

  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of spec.series) {
    for (let i = 0; i < s.x.length; i++) {
      if (!Number.isFinite(s.x[i])) continue;
      for (const v of [s.y[i], s.lo?.[i], s.hi?.[i]]) {
        if (v !== undefined && valid(v)) {
          xs.push(s.x[i]);
          ys.push(v);
        }
      }
    }
  }
  for (const h of spec.hLines ?? []) if (valid(h)) ys.push(h);
  const xInt = xs.every(Number.isInteger);
  const xt = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1, 8, xInt);
  const yt = logY
    ? logTicks(ys.length ? Math.min(...ys) : 1, ys.length ? Math.max(...ys) : 10)
    : niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1, 6);
  const yLabels = yt.ticks.map((t) => (logY ? logTickLabel(t) : formatNumber(t, yt.decimals)));
  const xLabels = xt.ticks.map((t) => formatNumber(t, xt.decimals));

  const tickSize = 12;
  const top = spec.subtitle ? 62 : 46;
  const left = 24 + 12 + Math.max(...yLabels.map((l) => textWidth(l, tickSize))) + 12;
  const right = 24;
  const bottom = 62;
  const plot: Box = { x: left, y: top, w: W - left - right, h: H - top - bottom };

  const sx = (v: number) => plot.x + ((v - xt.min) / (xt.max - xt.min)) * plot.w;
  const ly = (v: number) => (logY ? Math.log10(v) : v);
  const sy = (v: number) => plot.y + plot.h - ((ly(v) - ly(yt.min)) / (ly(yt.max) - ly(yt.min))) * plot.h;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT_FAMILY}">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(
    `<defs><clipPath id="plot"><rect x="${n(plot.x)}" y="${n(plot.y)}" width="${n(plot.w)}" height="${n(plot.h)}"/></clipPath></defs>`,
  );

  // Titles.
  const cx = plot.x + plot.w / 2;
  out.push(text(cx, 28, spec.title, { size: 17, anchor: 'middle', weight: 'bold', fill: '#111' }));
  if (spec.subtitle) out.push(text(cx, 48, spec.subtitle, { size: 12.5, anchor: 'middle', fill: '#555' }));

  // Gridlines and ticks.
  for (const [i, t] of yt.ticks.entries()) {
    const y = sy(t);
    out.push(
      `<line x1="${n(plot.x)}" x2="${n(plot.x + plot.w)}" y1="${n(y)}" y2="${n(y)}" stroke="#e3e3e3" stroke-width="1"/>`,
    );
    out.push(`<line x1="${n(plot.x - 5)}" x2="${n(plot.x)}" y1="${n(y)}" y2="${n(y)}" stroke="#333"/>`);
    out.push(text(plot.x - 8, y + 4, yLabels[i], { size: tickSize, anchor: 'end', fill: '#333' }));
  }
  for (const [i, t] of xt.ticks.entries()) {
    const x = sx(t);
    out.push(
      `<line x1="${n(x)}" x2="${n(x)}" y1="${n(plot.y)}" y2="${n(plot.y + plot.h)}" stroke="#e3e3e3" stroke-width="1"/>`,
    );
    out.push(
      `<line x1="${n(x)}" x2="${n(x)}" y1="${n(plot.y + plot.h)}" y2="${n(plot.y + plot.h + 5)}" stroke="#333"/>`,
    );
    out.push(text(x, plot.y + plot.h + 20, xLabels[i], { size: tickSize, anchor: 'middle', fill: '#333' }));
  }
  for (const h of spec.hLines ?? []) {
    if (!valid(h)) continue;
    out.push(
      `<line x1="${n(plot.x)}" x2="${n(plot.x + plot.w)}" y1="${n(sy(h))}" y2="${n(sy(h))}" stroke="#666" stroke-width="1.2" stroke-dasharray="4 3"/>`,
    );
  }

  // Axis labels.
  out.push(text(cx, H - 16, spec.xLabel, { size: 14, anchor: 'middle' }));
  const yMid = plot.y + plot.h / 2;
  out.push(
    text(20, yMid, spec.yLabel, {
      size: 14,
      anchor: 'middle',
      extra: `transform="rotate(-90 20 ${n(yMid)})"`,
    }),
  );

  // Bands first, so every line stays visible above every band.
  const drawn: [number, number][] = [];
  out.push('<g clip-path="url(#plot)">');
  for (const s of spec.series) {
    if (!s.lo || !s.hi) continue;
    const lo = s.lo.map((v) => (logY && v <= 0 ? yt.min : v));
    for (const idx of finiteRuns(s.x.length, s.x, lo, s.hi)) {
      if (idx.length < 2) continue;
      const pts = [
        ...idx.map((i) => `${n(sx(s.x[i]))},${n(sy(s.hi![i]))}`),
        ...[...idx].reverse().map((i) => `${n(sx(s.x[i]))},${n(sy(lo[i]))}`),
      ];
      out.push(`<polygon points="${pts.join(' ')}" fill="${s.color}" fill-opacity="0.17" stroke="none"/>`);
      for (const i of idx) drawn.push([sx(s.x[i]), sy(s.hi![i])], [sx(s.x[i]), sy(lo[i])]);
    }
  }
  for (const s of spec.series) {
    const y = s.y.map((v) => (valid(v) ? v : Number.NaN));
    for (const idx of finiteRuns(s.x.length, s.x, y)) {
      const pts = idx.map((i) => [sx(s.x[i]), sy(y[i])] as [number, number]);
      if (pts.length === 1 || spec.markers) {
        for (const [px, py] of pts)
          out.push(`<circle cx="${n(px)}" cy="${n(py)}" r="3.5" fill="${s.color}"/>`);
      }
      if (pts.length > 1) {
        const d = pts.map(([px, py], j) => `${j === 0 ? 'M' : 'L'}${n(px)} ${n(py)}`).join(' ');
        out.push(
          `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2.2" stroke-linejoin="round" stroke-linecap="round"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
        );
      }
      // Sample along segments so the legend avoids lines that cross a corner without a vertex there.
      for (let j = 0; j < pts.length; j++) {
        drawn.push(pts[j]);
        if (j > 0) {
          for (let k = 1; k < 8; k++) {
            const f = k / 8;
            drawn.push([
              pts[j - 1][0] + f * (pts[j][0] - pts[j - 1][0]),
              pts[j - 1][1] + f * (pts[j][1] - pts[j - 1][1]),
            ]);
          }
        }
      }
    }
  }
  out.push('</g>');

  // Plot frame on top of the data.
  out.push(
    `<rect x="${n(plot.x)}" y="${n(plot.y)}" width="${n(plot.w)}" height="${n(plot.h)}" fill="none" stroke="#333" stroke-width="1"/>`,
  );

  if ((spec.legend ?? true) && spec.series.length > 0) out.push(legend(spec.series, plot, drawn));
  out.push('</svg>');
  return out.join('\n');
}

/** Legend box in the inside corner that covers the fewest drawn points (matplotlib's "best"). */
function legend(series: LineSeries[], plot: Box, drawn: [number, number][]): string {
  const size = 13;
  const row = 21;
  const swatch = 30;
  const w = 12 + swatch + 8 + Math.max(...series.map((s) => textWidth(s.label, size))) + 12;
  const h = 8 + series.length * row + 4;
  const inset = 10;
  const corners: Box[] = [
    { x: plot.x + plot.w - w - inset, y: plot.y + inset, w, h },
    { x: plot.x + plot.w - w - inset, y: plot.y + plot.h - h - inset, w, h },
    { x: plot.x + inset, y: plot.y + inset, w, h },
    { x: plot.x + inset, y: plot.y + plot.h - h - inset, w, h },
  ];
  let box = corners[0];
  let fewest = Number.POSITIVE_INFINITY;
  for (const c of corners) {
    const hits = drawn.filter(
      ([px, py]) => px >= c.x && px <= c.x + c.w && py >= c.y && py <= c.y + c.h,
    ).length;
    if (hits < fewest) {
      fewest = hits;
      box = c;
    }
  }
  const out = [
    `<g class="legend"><rect x="${n(box.x)}" y="${n(box.y)}" width="${n(box.w)}" height="${n(box.h)}" rx="4" fill="#ffffff" fill-opacity="0.88" stroke="#bbbbbb"/>`,
  ];
  for (const [i, s] of series.entries()) {
    const y = box.y + 8 + i * row + row / 2;
    const x0 = box.x + 12;
    if (s.lo && s.hi) {
      out.push(
        `<rect x="${n(x0)}" y="${n(y - 6)}" width="${swatch}" height="12" fill="${s.color}" fill-opacity="0.17"/>`,
      );
    }
    out.push(
      `<line x1="${n(x0)}" x2="${n(x0 + swatch)}" y1="${n(y)}" y2="${n(y)}" stroke="${s.color}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    out.push(text(x0 + swatch + 8, y + 4.5, s.label, { size }));
  }
  out.push('</g>');
  return out.join('\n');
}

/** ColorBrewer "Blues": sequential, light-to-dark, readable for colour-blind viewers. */
const BLUES: [number, [number, number, number]][] = [
  [0, [247, 251, 255]],
  [0.25, [198, 219, 239]],
  [0.5, [107, 174, 214]],
  [0.75, [33, 113, 181]],
  [1, [8, 48, 107]],
];

export function blues(v: number): string {
  const t = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0));
  let i = 1;
  while (i < BLUES.length - 1 && t > BLUES[i][0]) i++;
  const [t0, c0] = BLUES[i - 1];
  const [t1, c1] = BLUES[i];
  const f = (t - t0) / (t1 - t0);
  const hex = c0.map((c, k) =>
    Math.round(c + f * (c1[k] - c))
      .toString(16)
      .padStart(2, '0'),
  );
  return `#${hex.join('')}`;
}

function clip(label: string, max: number): string {
  return label.length > max ? `${label.slice(0, max - 1)}…` : label;
}

/**
 * Confusion matrix (rows = true class, columns = predicted). Colour is the row-normalised share, so
 * rare classes read as clearly as common ones; counts are written in the cells when they fit.
 */
export function heatmapSvg(
  matrix: number[][],
  rowLabels: string[],
  colLabels: string[],
  title: string,
): string {
  const rows = matrix.length;
  const cols = Math.max(0, ...matrix.map((r) => r.length));
  const cell = Math.max(14, Math.min(52, Math.floor(620 / Math.max(1, rows, cols))));
  const labelSize = 12;
  const rl = Array.from({ length: rows }, (_, i) => clip(rowLabels[i] ?? String(i), 18));
  const cl = Array.from({ length: cols }, (_, j) => clip(colLabels[j] ?? String(j), 18));
  const rowLabelW = Math.max(20, ...rl.map((l) => textWidth(l, labelSize)));
  const colLabelW = Math.max(20, ...cl.map((l) => textWidth(l, labelSize)));

  const x0 = 34 + rowLabelW + 10;
  const y0 = 66;
  const gridW = cols * cell;
  const gridH = rows * cell;
  // Column labels are rotated 45°, so they need ~0.71 of their length below the grid.
  const below = 12 + colLabelW * 0.71 + 34;
  const barX = x0 + gridW + 24;
  const W = Math.ceil(Math.max(barX + 16 + 52, x0 + textWidth(title, 17) / 2 + gridW / 2 + 20));
  const H = Math.ceil(y0 + gridH + below);

  let total = 0;
  let correct = 0;
  for (const [i, r] of matrix.entries()) {
    for (const [j, c] of r.entries()) {
      total += c;
      if (i === j) correct += c;
    }
  }

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT_FAMILY}">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  const cx = x0 + gridW / 2;
  out.push(text(cx, 26, title, { size: 17, anchor: 'middle', weight: 'bold', fill: '#111' }));
  const sub =
    total > 0 && rows === cols
      ? `accuracy ${((100 * correct) / total).toFixed(1)}% of ${total} · colour = share of the true class`
      : 'colour = share of the true class';
  out.push(text(cx, 46, sub, { size: 12, anchor: 'middle', fill: '#555' }));

  const countSize = Math.min(12, Math.max(8, cell * 0.36));
  for (let i = 0; i < rows; i++) {
    const row = matrix[i] ?? [];
    const sum = row.reduce((a, b) => a + b, 0);
    for (let j = 0; j < cols; j++) {
      const c = row[j] ?? 0;
      const share = sum > 0 ? c / sum : 0;
      const x = x0 + j * cell;
      const y = y0 + i * cell;
      out.push(
        `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${blues(share)}" stroke="#ffffff" stroke-width="${cell >= 20 ? 1 : 0.5}"/>`,
      );
      const label = String(c);
      if (textWidth(label, countSize) + 4 <= cell && countSize >= 8) {
        out.push(
          text(x + cell / 2, y + cell / 2 + countSize * 0.36, label, {
            size: Number(countSize.toFixed(1)),
            anchor: 'middle',
            fill: share > 0.55 ? '#ffffff' : c === 0 ? '#9aa5b1' : '#1a1a1a',
          }),
        );
      }
    }
    out.push(
      text(x0 - 6, y0 + i * cell + cell / 2 + 4, rl[i], { size: labelSize, anchor: 'end', fill: '#333' }),
    );
  }
  out.push(
    `<rect x="${x0}" y="${y0}" width="${gridW}" height="${gridH}" fill="none" stroke="#555" stroke-width="1"/>`,
  );
  for (let j = 0; j < cols; j++) {
    const x = x0 + j * cell + cell / 2 + 4;
    const y = y0 + gridH + 10;
    out.push(
      text(x, y, cl[j], {
        size: labelSize,
        anchor: 'end',
        fill: '#333',
        extra: `transform="rotate(-45 ${n(x)} ${n(y)})"`,
      }),
    );
  }
  out.push(text(cx, H - 12, 'predicted class', { size: 14, anchor: 'middle' }));
  const yMid = y0 + gridH / 2;
  out.push(
    text(16, yMid, 'true class', {
      size: 14,
      anchor: 'middle',
      extra: `transform="rotate(-90 16 ${n(yMid)})"`,
    }),
  );

  // Colour bar: top = 100 % of the row.
  out.push(
    `<defs><linearGradient id="bar" x1="0" y1="1" x2="0" y2="0">${BLUES.map(([t, c]) => `<stop offset="${t}" stop-color="rgb(${c.join(',')})"/>`).join('')}</linearGradient></defs>`,
  );
  const barH = Math.max(60, gridH);
  out.push(`<rect x="${n(barX)}" y="${y0}" width="16" height="${barH}" fill="url(#bar)" stroke="#555"/>`);
  for (const t of [0, 0.5, 1]) {
    const y = y0 + barH - t * barH;
    out.push(`<line x1="${n(barX + 16)}" x2="${n(barX + 20)}" y1="${n(y)}" y2="${n(y)}" stroke="#333"/>`);
    out.push(text(barX + 23, y + 4, `${t * 100}%`, { size: 11, fill: '#333' }));
  }
  out.push('</svg>');
  return out.join('\n');
}

/** Width and height attributes of an SVG document. */
export function svgSize(svg: string): { width: number; height: number } {
  const w = /<svg[^>]*\swidth="([\d.]+)"/.exec(svg);
  const h = /<svg[^>]*\sheight="([\d.]+)"/.exec(svg);
  return { width: Number(w?.[1]), height: Number(h?.[1]) };
}
