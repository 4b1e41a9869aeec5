import type { KernelFunc } from '@tensorflow/tfjs-core';

/**
 * Identity without the copy: the output shares the input's data (tensors are immutable; the wasm
 * backend reference-counts data ids, as its own Reshape does). Stock wasm copies every byte, and a
 * training step runs Identity ~140 times (tf.grad, customGrad, optimizers), on full activations too.
 */
export function makeIdentity(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend } = args;
    const x = inputs.x;
    if (x == null) throw new Error('Identity: missing input');
    const b = backend as { incRef?: (dataId: object) => void };
    if (x.dtype === 'string' || typeof b.incRef !== 'function') return stock(args);
    b.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}
