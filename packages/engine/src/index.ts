export { type BackendInfo, type BackendPreference, currentBackendInfo, initBackend } from './backend.js';
export {
  createDataParallelTrainer,
  type DataParallelOptions,
  type DataParallelTrainer,
} from './data_parallel.js';
export { fuseForInference, type InferenceGraph } from './inference/fuse.js';
export {
  ADDED_KERNELS,
  REPLACED_KERNELS,
  registerTrainingKernels,
  useKernelReplacements,
} from './kernels/index.js';
export { setWinogradThreads, winogradStats } from './kernels/winograd.js';
