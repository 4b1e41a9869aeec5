// Shared presentation helpers for the dashboard and reports. Browser-safe: nothing here imports Node
// modules or @headbench/core at runtime. The uPlot chart lives in `@headbench/ui/chart` (DOM only).

export * from './export.ts';
export * from './report.ts';
export * from './series.ts';
export * from './style.ts';
