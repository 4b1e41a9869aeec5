import { type backend_util, engine, Tensor, type TensorInfo } from '@tensorflow/tfjs-core';

/**
 * Kernel inputs arrive as TensorInfo (usually real Tensors). Ops need Tensor objects; wrapping a bare
 * TensorInfo makes a new handle on the same data that the surrounding tidy() disposes.
 */
export function asTensor<T extends Tensor = Tensor>(info: TensorInfo | undefined): T {
  if (info == null) throw new Error('headbench kernel: missing input');
  return (info instanceof Tensor ? info : engine().makeTensorFromTensorInfo(info)) as T;
}

export type DataFormat = 'NHWC' | 'NCHW';

export type PadAttr = 'valid' | 'same' | number | backend_util.ExplicitPadding;

export function pair(v: number | [number, number] | undefined | null): [number, number] {
  if (v == null) return [1, 1];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** NCHW <-> NHWC helpers: our kernels compute in NHWC (the layout wasm's conv kernels support). */
export const NCHW_TO_NHWC = [0, 2, 3, 1];
export const NHWC_TO_NCHW = [0, 3, 1, 2];
export function shapeToNHWC(
  shape: number[],
  dataFormat: DataFormat | undefined,
): [number, number, number, number] {
  return (dataFormat === 'NCHW' ? [shape[0], shape[2], shape[3], shape[1]] : [...shape]) as [
    number,
    number,
    number,
    number,
  ];
}

/** The parts of the wasm backend our JS kernels use: allocation on, and views into, the wasm heap. */
export interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32' | 'int32' | 'bool'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

export function asWasmBackend(backend: unknown): WasmHeapBackend {
  const b = backend as Partial<WasmHeapBackend>;
  if (typeof b.makeOutput !== 'function' || typeof b.typedArrayFromHeap !== 'function') {
    throw new Error('headbench kernel: expected the wasm backend');
  }
  return b as WasmHeapBackend;
}
