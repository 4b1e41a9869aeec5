// What a run produces is part of the experiment spec (the API and the dashboard read the same records).
export type {
  BatchMetrics,
  EpochMetrics,
  ParamCounts,
  Provenance,
  RunResult,
  RunSummary,
  ShiftResult,
  SplitRecord,
  WeightsProvenance,
} from '@headbench/spec';
