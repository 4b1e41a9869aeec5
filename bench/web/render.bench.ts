// Chart render cost in the real browser: 100 runs × 500 epochs in one uPlot chart from @headbench/ui.
// Bundles the chart with esbuild, loads it into Debian's chromium, prints time to first render and per live
// update (each update appends one epoch to every run, as the sweep view does). Run: npx tsx bench/web/render.bench.ts
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readEnv } from '@headbench/spec';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const RUNS = 100;
const EPOCHS = 500;
const UPDATES = 30;

const entry = `
import { LineChart } from ${JSON.stringify(join(root, 'packages/ui/src/chart.ts'))};
const RUNS = ${RUNS}, EPOCHS = ${EPOCHS};
const color = (i) => '#' + ((i * 2654435761) >>> 8 & 0xffffff).toString(16).padStart(6, '0');
function lines(epochs) {
  const out = [];
  for (let r = 0; r < RUNS; r++) {
    const x = new Array(epochs), y = new Array(epochs);
    for (let e = 0; e < epochs; e++) { x[e] = e + 1; y[e] = 0.9 * (1 - Math.exp(-e / 60)) + 0.02 * Math.sin(e / 7 + r); }
    out.push({ label: 'run ' + r, color: color(r), x, y });
  }
  return out;
}
const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
window.runBench = async (updates) => {
  const el = document.getElementById('c');
  const data = lines(EPOCHS);
  const t0 = performance.now();
  const chart = new LineChart(el, { title: 'bench', width: 1200, height: 400, xLabel: 'epoch' });
  chart.setSeries(data);
  await frame();
  const first = performance.now() - t0;
  const per = [];
  let epochs = EPOCHS;
  for (let i = 0; i < updates; i++) {
    epochs++;
    const next = data.map((l) => ({ ...l, x: [...l.x, epochs], y: [...l.y, l.y[l.y.length - 1]] }));
    data.splice(0, data.length, ...next);
    const t = performance.now();
    chart.setSeries(next);
    await frame();
    per.push(performance.now() - t);
  }
  // Hover: the panel lists every run's value at the cursor.
  const over = el.querySelector('.u-over');
  const rect = over.getBoundingClientRect();
  const th = performance.now();
  for (let i = 0; i < 20; i++) over.dispatchEvent(new MouseEvent('mousemove', { clientX: rect.left + 20 + i * 40, clientY: rect.top + 100, bubbles: true }));
  await frame();
  const hover = (performance.now() - th) / 20;
  return { first, per, hover, points: chart.pointCount, hoverRows: el.querySelectorAll('.hb-chart-hover > div').length - 1 };
};
`;

const bundle = await build({
  stdin: { contents: entry, resolveDir: root, loader: 'ts' },
  bundle: true,
  format: 'iife',
  write: false,
  minify: true,
});
const css = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
const browser = await chromium.launch({
  executablePath: readEnv(process.env).HEADBENCH_CHROMIUM,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.setContent(
    `<!doctype html><style>${css}</style><div id="c"></div><script>${bundle.outputFiles[0].text}</script>`,
  );
  const r = (await page.evaluate(
    (n) => (globalThis as unknown as { runBench(n: number): Promise<unknown> }).runBench(n),
    UPDATES,
  )) as {
    first: number;
    per: number[];
    hover: number;
    points: number;
    hoverRows: number;
  };
  const sorted = [...r.per].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const p95 = sorted[Math.floor(sorted.length * 0.95)];
  console.log(`chart: ${RUNS} runs × ${EPOCHS} epochs (${r.points} points), chromium ${browser.version()}`);
  console.log(`first render:  ${r.first.toFixed(1)} ms`);
  console.log(
    `live update:   median ${median.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms (${UPDATES} updates, +1 epoch on every run)`,
  );
  console.log(`hover:         ${r.hover.toFixed(2)} ms per cursor move (${r.hoverRows} values listed)`);
} finally {
  await browser.close();
}
