export { type BackendInfo, type BackendPreference, currentBackendInfo, initBackend } from './backend.js';
export {
  ADDED_KERNELS,
  REPLACED_KERNELS,
  registerTrainingKernels,
  useKernelReplacements,
} from './kernels/index.js';
