import {
  type DataType,
  type KernelBackend,
  type KernelConfig,
  type KernelFunc,
  type TypedArray,
  tensor,
  UnsortedSegmentSum,
  type UnsortedSegmentSumAttrs,
  util,
} from '@tensorflow/tfjs-core';

/**
 * out[s, ...] = sum of x[i, ...] over every i whose segment id is s; ids outside [0, numSegments) are
 * dropped (TensorFlow semantics). A single linear pass in JS: the cpu backend's version loops over
 * segments with one masked full-size multiply per segment.
 */
export const unsortedSegmentSum: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs;
  if (x == null || segmentIds == null) throw new Error('UnsortedSegmentSum: missing input');
  const { numSegments } = attrs as unknown as UnsortedSegmentSumAttrs;
  const b = backend as KernelBackend;
  const idsShape = segmentIds.shape;
  util.assert(
    util.arraysEqual(x.shape.slice(0, idsShape.length), idsShape),
    () => `UnsortedSegmentSum: segmentIds shape ${idsShape} must be a prefix of x shape ${x.shape}`,
  );
  const inner = util.sizeFromShape(x.shape.slice(idsShape.length));
  const xs = b.readSync(x.dataId) as TypedArray;
  const ids = b.readSync(segmentIds.dataId) as TypedArray;
  const dtype: DataType = x.dtype === 'int32' ? 'int32' : 'float32';
  // Accumulate in float64 for float input: the reference sums in float32 but in an order we can't match
  // anyway; higher precision keeps us within rounding of the exact sum.
  const acc = dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float64Array(numSegments * inner);
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) acc[dst + j] += xs[src + j];
  }
  const out = dtype === 'int32' ? acc : Float32Array.from(acc);
  return tensor(out as TypedArray, [numSegments, ...x.shape.slice(idsShape.length)], dtype);
};

export const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum,
};
