// Shared presentation helpers for the dashboard and reports. Browser-safe: nothing here imports Node
// modules or @headbench/core at runtime. The uPlot chart lives in `@headbench/ui/chart` (DOM only).

export * from './export.ts';
export * from './report.ts';
export * from './series.ts';
export * from './style.ts';

/** Mean and sample standard deviation. */
export function meanStd(values: readonly number[]): { mean: number; std: number } {
  if (values.length === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance =
    values.length > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}

/** "87.5 ± 1.2 %" for accuracies in [0, 1]. */
export function formatAccuracy(values: readonly number[], digits = 1): string {
  const { mean, std } = meanStd(values);
  if (Number.isNaN(mean)) return '—';
  const pct = (v: number) => (v * 100).toFixed(digits);
  return values.length > 1 ? `${pct(mean)} ± ${pct(std)} %` : `${pct(mean)} %`;
}
