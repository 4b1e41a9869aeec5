import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/index.js';

/** Deterministic values in [-1, 1) (mulberry32), so wasm and cpu see identical inputs. */
export function rand(size: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/**
 * Norm-relative error: max|a - b| / max(max|b|, floor). Scale-free, and one wrong element anywhere
 * shows up (unlike a mean error). Shapes must match; a length mismatch is an infinite error.
 */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    // NaN must fail, and Math.max would drop it.
    if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
    diff = Math.max(diff, d);
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, floor);
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export interface Input {
  shape: number[];
  data: Float32Array | Int32Array;
  dtype?: 'float32' | 'int32';
}

export interface Output {
  shape: number[];
  data: Float32Array | Int32Array;
}

/** Runs one kernel on the given backend on fresh tensors and returns its output values. */
export async function runKernelOn(
  backend: 'wasm' | 'cpu',
  kernelName: string,
  inputs: Record<string, Input>,
  attrs: object,
): Promise<Output> {
  await initBackend(backend);
  const ins: tf.NamedTensorMap = {};
  for (const [k, v] of Object.entries(inputs)) ins[k] = tf.tensor(v.data, v.shape, v.dtype ?? 'float32');
  const out = tf.engine().runKernel(kernelName, ins, attrs as tf.NamedAttrMap) as tf.Tensor;
  const res = { shape: out.shape, data: out.dataSync() as Float32Array | Int32Array };
  tf.dispose([out, ...Object.values(ins)]);
  return res;
}

/** Same kernel on wasm (our kernels) and cpu (reference). */
export async function compareKernel(
  kernelName: string,
  inputs: Record<string, Input>,
  attrs: object,
): Promise<{ wasm: Output; cpu: Output; err: number }> {
  const wasm = await runKernelOn('wasm', kernelName, inputs, attrs);
  const cpu = await runKernelOn('cpu', kernelName, inputs, attrs);
  const err =
    String(wasm.shape) === String(cpu.shape) ? relErr(wasm.data, cpu.data) : Number.POSITIVE_INFINITY;
  return { wasm, cpu, err };
}
