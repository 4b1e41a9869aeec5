'use client';
import type { ChartSeries, LineChart } from '@headbench/ui/chart';
import { useEffect, useRef } from 'react';
import { download } from '../lib/browser';

export interface ChartProps {
  title: string;
  series: ChartSeries[];
  xLabel?: string;
  yLabel?: string;
  logY?: boolean;
  height?: number;
  format?: (v: number) => string;
  /** File name for the PNG export. */
  fileName?: string;
}

/** A uPlot chart; series changes with the same lines only swap data (cheap live updates). */
export function Chart({
  title,
  series,
  xLabel,
  yLabel,
  logY = false,
  height = 260,
  format,
  fileName,
}: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<LineChart | null>(null);
  const latest = useRef(series);
  latest.current = series;

  // Rebuilt only when the frame changes; data and log scale are pushed by the effects below.
  // biome-ignore lint/correctness/useExhaustiveDependencies: logY/format/series go through setOptions/setSeries
  useEffect(() => {
    let disposed = false;
    let ro: ResizeObserver | undefined;
    // uPlot touches `window` at import time: load it in the browser only.
    void import('@headbench/ui/chart').then(({ LineChart }) => {
      const el = box.current;
      if (disposed || !el) return;
      const c = new LineChart(el, {
        title,
        xLabel,
        yLabel,
        logY,
        height,
        width: el.clientWidth || 600,
        format,
      });
      chart.current = c;
      c.setSeries(latest.current);
      el.dataset.points = String(c.pointCount);
      el.dataset.ready = '1';
      ro = new ResizeObserver(() => c.resize(el.clientWidth));
      ro.observe(el);
    });
    return () => {
      disposed = true;
      ro?.disconnect();
      chart.current?.destroy();
      chart.current = null;
    };
  }, [title, xLabel, yLabel, height]);

  useEffect(() => {
    chart.current?.setOptions({ logY });
  }, [logY]);

  useEffect(() => {
    const c = chart.current;
    if (!c) return;
    c.setSeries(series);
    if (box.current) box.current.dataset.points = String(c.pointCount);
  }, [series]);

  return (
    <figure>
      <div ref={box} data-chart={title} />
      <div className="fig-actions">
        <button
          type="button"
          aria-label={`Export ${title} as PNG`}
          onClick={() => {
            const png = chart.current?.toPng();
            if (png) download(`${fileName ?? title.replace(/\W+/g, '-').toLowerCase()}.png`, png);
          }}
        >
          PNG
        </button>
      </div>
    </figure>
  );
}
