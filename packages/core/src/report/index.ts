// Report writer: groups runs over seeds, draws SVG charts (rendered to PNG with sharp), writes report.md.
// Only distinctive names are exported, so `export *` from the package index cannot collide.

export { type CamGridResult, type CamRow, writeCamGrid } from './cam.js';
export { metricsCsv, summaryCsv } from './csv.js';
export {
  type CurveName,
  type CurveStats,
  compareGroups,
  type EpochMetricName,
  groupRuns,
  type RunGroup,
  type SeedStat,
  type ShiftStat,
} from './stats.js';
export { heatmapSvg, type LineChartSpec, type LineSeries, lineChartSvg } from './svg.js';
export { type ReportSection, writeReport } from './write.js';
