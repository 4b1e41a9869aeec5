export { type BackendInfo, type BackendPreference, currentBackendInfo, initBackend } from './backend.js';
export {
  createDataParallelTrainer,
  type DataParallelOptions,
  type DataParallelTrainer,
} from './data_parallel.js';
export { forceHeapGrowth, type HeapGrowthPlan, type HeapGrowthStats } from './heap_pressure.js';
export { fuseForInference, type InferenceGraph } from './inference/fuse.js';
export { denseGemmStats } from './kernels/batch_matmul.js';
export { ConvPool, configureConvPool, convPool, type TfjsHeap, tfjsHeapOf } from './kernels/conv_pool.js';
export { filterGradStats } from './kernels/conv2d_backprop_filter.js';
export {
  ADDED_KERNELS,
  REPLACED_KERNELS,
  registerTrainingKernels,
  useKernelReplacements,
} from './kernels/index.js';
export { RELU_GRAD, reluGradStats, useOnePassReluGradients } from './kernels/relu_grad.js';
export { winogradStats } from './kernels/winograd.js';
export { batchNormTrainingStats, useFusedBatchNormTraining } from './layers/batch_norm_training.js';
export { convTrainingStats, usePlainConvTraining } from './layers/conv_training.js';
export { GEM_EPSILON, gemPool, gemStats } from './ops/gem.js';
export { ADAM_UPDATE, adamStats, useOnePassAdam } from './optimizers/adam.js';
export { kerasRmspropStep, RMSPROP_UPDATE, rmspropStats } from './optimizers/rmsprop.js';
