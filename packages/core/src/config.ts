// The experiment's names and the run config are defined once, in @headbench/spec; core re-exports them for
// its own modules and for callers that already import core.
export {
  BACKBONE_NAMES,
  BACKEND_NAMES,
  type BackboneName,
  type BackendName,
  DEFAULT_SHIFTS,
  HEAD_NAMES,
  HEAD_POOLING,
  type HeadName,
  OPTIMIZER_NAMES,
  type OptimizerName,
  POOLING_NAMES,
  type PoolingName,
  type RunConfig,
  resolvedSplitSeed,
  type Trainable,
} from '@headbench/spec';
