import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { readEnv } from '@headbench/spec';
import { backend_util } from '@tensorflow/tfjs-core';
import type { PadAttr } from './util.js';
import type { DepthwiseGeometry as WindowGeometry } from './wasm_kernels.js';

/**
 * Runs the kernels of wasm/conv_pool.wasm (Winograd convolution, conv filter gradient, column sums,
 * max-pool gradient, BatchNorm training, ReLU gradient) on several threads: one WebAssembly memory (tfjs's
 * own heap, so tensors are used in place; a pool built without it has its own, and copies operands in and
 * out), one instance on this thread and one per helper worker (each with its own stack), woken through a
 * control block with Atomics. The calling thread does its share too
 * and blocks until the helpers are done, so a kernel call stays synchronous, as tfjs kernels must be.
 * Helpers are unref'd: they never keep a process alive.
 */
interface SharedMemory {
  buffer: SharedArrayBuffer;
  grow(pages: number): number;
}
interface PoolExports {
  __stack_pointer: { value: number };
  __heap_base: { value: number };
  wino_filter(g: number, u: number, n: number): void;
  wino_conv(...args: number[]): void;
  filter_grad(...args: number[]): void;
  reduce_rows(...args: number[]): void;
  max_pool_grad(...args: number[]): void;
  bn_stats(...args: number[]): void;
  bn_apply(...args: number[]): void;
  bn_grad_stats(...args: number[]): void;
  bn_grad_apply(...args: number[]): void;
  relu_grad(...args: number[]): void;
  gemm_nn(...args: number[]): void;
  gemm_tn(...args: number[]): void;
  gemm_nt(...args: number[]): void;
  adam_update(...args: number[]): void;
  rmsprop_update(...args: number[]): void;
  gem_forward(...args: number[]): void;
  gem_backward(...args: number[]): void;
}
/** The few WebAssembly JS API calls used here (the project's TS lib has no WebAssembly typings). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => SharedMemory;
  validate(bytes: Uint8Array): boolean;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const PAGE = 65536;
/** Elements per work unit of relu_grad (wasm/training.c) and adam_update (wasm/dense.c). */
const RELU_BLOCK = 4096;
const ELEM_BLOCK = 4096;
const STACK = 65536;
/**
 * Control block (Int32): [0] generation, [1] helpers done, [2] stop; the job: [8] kernel (index into
 * KERNELS), [9] argument count, [10] index of the per-thread scratch argument (-1: none), [11] scratch
 * bytes per thread, [12] work units, [13] threads; [16..] arguments. Thread i runs units
 * [units·i/threads, units·(i+1)/threads), passed as the kernel's last two arguments.
 */
const KERNELS = [
  'wino_conv',
  'filter_grad',
  'reduce_rows',
  'max_pool_grad',
  'bn_stats',
  'bn_apply',
  'bn_grad_stats',
  'bn_grad_apply',
  'relu_grad',
  'gemm_nn',
  'gemm_tn',
  'gemm_nt',
  'adam_update',
  'rmsprop_update',
  'gem_forward',
  'gem_backward',
] as const;

/** Which matrix product (wasm/dense.c): A·B, Aᵀ·B or A·Bᵀ, all row-major. */
export type GemmKind = 'nn' | 'tn' | 'nt';

/** Adam's float32 constants, in adam_update's order (wasm/dense.c). */
export interface AdamConstants {
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  /** 1 − beta1^t and 1 − beta2^t: the bias corrections. */
  correction1: number;
  correction2: number;
  epsilon: number;
  learningRate: number;
}

/** A stride-1, dilation-1 NHWC convolution's sizes: x [n,h,w,c], output [n,oh,ow,oc]. */
export interface Stride1Geometry {
  n: number;
  h: number;
  w: number;
  c: number;
  oc: number;
  oh: number;
  ow: number;
  padTop: number;
  padLeft: number;
}

/** The geometry of conv(x, filter [kh,kw,c,oc]) with stride 1 and this padding, and its multiply-adds. */
export function stride1Geometry(
  xShape: number[],
  filterShape: number[],
  pad: PadAttr,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): { geometry: Stride1Geometry; macs: number } {
  const info = backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    [1, 1],
    [1, 1],
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const [kh, kw, c, oc] = filterShape;
  const geometry = {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    c,
    oc,
    oh: info.outHeight,
    ow: info.outWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
  return { geometry, macs: info.batchSize * info.outHeight * info.outWidth * kh * kw * c * oc };
}

export interface Conv3x3 extends Stride1Geometry {
  x: Float32Array;
  filter: Float32Array;
  bias: Float32Array | null;
  /** 0 linear, 1 relu, 2 relu6 */
  activation: 0 | 1 | 2;
}

export interface FilterGradStride1 extends Stride1Geometry {
  x: Float32Array;
  dy: Float32Array;
  kh: number;
  kw: number;
}

/**
 * tfjs-backend-wasm's own heap, for a pool that works on tensors in place: our instances import its
 * memory (conv_pool*.wasm have no data segment: they write nothing at instantiation); scratch and thread
 * stacks come from tfjs's malloc. The threaded build's memory is shared (conv_pool*.wasm, every thread);
 * the one-thread build's is not (conv_pool_single*.wasm, one thread).
 */
export interface TfjsHeap {
  memory: SharedMemory;
  /** The threaded build's memory is shared (helpers can use it); the one-thread build's is not. */
  shared: boolean;
  malloc(bytes: number): number;
  free(address: number): void;
}

/** What a kernel call reads (`in`), writes (`out`) or only needs as room (`scratch`, in floats). */
type Operand = { in: Float32Array } | { out: Float32Array } | { scratch: number };

export class ConvPool {
  private memory: SharedMemory;
  private main: PoolExports;
  private control = new Int32Array(new SharedArrayBuffer(64 * 4));
  private workers: Worker[] = [];
  private dataStart = 0;
  private heap: TfjsHeap | null;
  /** Every buffer object the shared memory has had (it changes when the memory grows). */
  private buffers = new WeakSet<object>();

  /** True when the kernels use relaxed SIMD's fused multiply-add (conv_pool_fma.wasm). */
  readonly fma: boolean;
  /** True when the pool works in tfjs's heap: tensors are read and written in place, not copied. */
  readonly inPlace: boolean;
  /** Bytes of tfjs's heap the pool holds for a call in progress (scratch, copies): 0 between calls. */
  scratchInUse = 0;
  /** Bounds-checked mode (HEADBENCH_WASM_CHECK=1): every call is checked for writes outside its operands. */
  readonly check: boolean;
  /** Kernels run since the current bind (named by a failed check). */
  private ran: string[] = [];

  constructor(
    readonly threads: number,
    options: { fma?: boolean; heap?: TfjsHeap; check?: boolean } = {},
  ) {
    this.check = options.check ?? readEnv(process.env).HEADBENCH_WASM_CHECK;
    // An unshared heap cannot be handed to helper threads: then the pool keeps its own memory.
    this.heap = options.heap && (options.heap.shared || threads === 1) ? options.heap : null;
    this.inPlace = this.heap !== null;
    const shared = this.heap?.shared ?? true;
    const { module, fma } = loadModule(options.fma ?? readEnv(process.env).HEADBENCH_WASM_FMA, shared);
    this.fma = fma;
    this.memory = this.heap?.memory ?? new WA.Memory({ initial: 256, maximum: 65536, shared: true });
    this.main = new WA.Instance(module, { env: { memory: this.memory } }).exports as PoolExports;
    // Own memory: the module's own (stack-first) stack, helper stacks after it, then data. tfjs's heap:
    // every stack from its malloc, never freed (the pool lives as long as the backend).
    let stackTop: (i: number) => number;
    if (this.heap) {
      const stacks = this.heap.malloc(threads * STACK + 64);
      if (!stacks) throw new Error('conv pool: tfjs malloc failed for the thread stacks');
      stackTop = (i) => align(stacks) + (i + 1) * STACK - 16;
      this.main.__stack_pointer.value = stackTop(0);
    } else {
      const heapBase = this.main.__heap_base.value;
      this.dataStart = heapBase + (threads - 1) * STACK;
      stackTop = (i) => heapBase + i * STACK;
    }
    for (let i = 1; i < threads; i++) {
      const worker = new Worker(new URL('./conv_pool_worker.mjs', import.meta.url), {
        workerData: {
          module,
          memory: this.memory,
          control: this.control.buffer,
          index: i,
          stackTop: stackTop(i),
          kernels: KERNELS,
        },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** y = conv3x3(x, filter) + bias, then the activation; stride 1, NHWC, C and OC multiples of 4. */
  winograd(a: Conv3x3, out: Float32Array): void {
    const { c, oc } = a;
    const tiles = a.n * Math.ceil(a.oh / 2) * Math.ceil(a.ow / 2);
    // Tiles per chunk: the chunk's transformed input (16·chunk·C floats) about 2 MB, in cache for the GEMMs.
    const chunk = Math.max(16, Math.min(512, Math.floor(32768 / Math.max(c, oc))));
    const scratchFloats = 16 * chunk * c + 16 * chunk * oc + 256 * 8;
    const bias = a.bias ?? new Float32Array(0);
    const [[xOff, gOff, uOff, bOff, yOff, sOff], done] = this.bind([
      { in: a.x },
      { in: a.filter },
      { scratch: 16 * c * oc },
      { in: bias },
      { out },
      { scratch: scratchFloats * this.threads },
    ]);
    try {
      this.main.wino_filter(gOff, uOff, c * oc);
      // wino_conv(x, u, bias, y, scratch, N, H, W, C, OC, OH, OW, pt, pl, act, chunk, begin, end)
      const args = [xOff, uOff, a.bias ? bOff : 0, yOff, sOff, a.n, a.h, a.w, c, oc, a.oh, a.ow];
      args.push(a.padTop, a.padLeft, a.activation, chunk);
      this.run(0, args, 4, scratchFloats * 4, tiles);
    } finally {
      done();
    }
  }

  /** dw [kh, kw, C, OC] of a stride-1, dilation-1 NHWC conv; OC a multiple of 4. */
  filterGrad(a: FilterGradStride1, out: Float32Array): void {
    const size = a.kh * a.kw * a.c * a.oc;
    const [[xOff, dyOff, dwOff], done, view] = this.bind([
      { in: a.x },
      { in: a.dy },
      { scratch: size * this.threads },
      { out },
    ]);
    try {
      // filter_grad(x, dy, dw, N, H, W, C, OH, OW, OC, KH, KW, pt, pl, begin, end): rows of N·OH.
      const args = [
        xOff,
        dyOff,
        dwOff,
        a.n,
        a.h,
        a.w,
        a.c,
        a.oh,
        a.ow,
        a.oc,
        a.kh,
        a.kw,
        a.padTop,
        a.padLeft,
      ];
      const rows = a.n * a.oh;
      this.run(1, args, 2, size * 4, rows);
      // Each thread with rows summed them into its own partial; add those up.
      const dw = view(3);
      dw.fill(0);
      const heap = this.memory.buffer;
      for (let t = 0; t < this.threads; t++) {
        if (!this.ranUnits(t, rows)) continue;
        const part = new Float32Array(heap, dwOff + t * size * 4, size);
        for (let i = 0; i < size; i++) dw[i] += part[i];
      }
    } finally {
      done();
    }
  }

  /** out[c] = sum (or mean) over r of x[r, c]: the leading axes of an NHWC tensor reduced. */
  reduceRows(x: Float32Array, rows: number, cols: number, out: Float32Array, mean: boolean): void {
    // A float64 per column per thread.
    const [[xOff, accOff], done, view] = this.bind([
      { in: x },
      { scratch: 2 * cols * this.threads },
      { out },
    ]);
    try {
      // reduce_rows(x, acc, cols, begin, end), a float64 partial per thread.
      this.run(2, [xOff, accOff, cols], 1, cols * 8, rows);
      const total = new Float64Array(cols);
      const heap = this.memory.buffer;
      for (let t = 0; t < this.threads; t++) {
        if (!this.ranUnits(t, rows)) continue;
        const part = new Float64Array(heap, accOff + t * cols * 8, cols);
        for (let c = 0; c < cols; c++) total[c] += part[c];
      }
      const sums = view(2);
      for (let c = 0; c < cols; c++) sums[c] = mean ? total[c] / rows : total[c];
    } finally {
      done();
    }
  }

  /** dx of a max pool (window geometry as computePool2DInfo gives it), images split across threads. */
  maxPoolGrad(a: WindowGeometry & { x: Float32Array; dy: Float32Array }, out: Float32Array): void {
    const [[xOff, dyOff, dxOff], done] = this.bind([{ in: a.x }, { in: a.dy }, { out }]);
    try {
      // max_pool_grad(x, dy, dx, H, W, C, OH, OW, FH, FW, SH, SW, DH, DW, top, left, begin, end): images.
      const args = [xOff, dyOff, dxOff, a.h, a.w, a.c, a.oh, a.ow, a.kh, a.kw, a.sh, a.sw, a.dh, a.dw];
      args.push(a.top, a.left);
      this.run(3, args, -1, 0, a.n);
    } finally {
      done();
    }
  }

  /**
   * BatchNorm forward in training mode over the last axis of x [rows, cols]: y = (x - mean) / sqrt(var +
   * eps) * gamma + beta with the batch's own mean and (biased) variance, which it returns.
   */
  batchNormForward(
    x: Float32Array,
    rows: number,
    cols: number,
    gamma: Float32Array,
    beta: Float32Array,
    epsilon: number,
    y: Float32Array,
  ): { mean: Float32Array; variance: Float32Array; invStd: Float32Array } {
    // Read in JS below: copied now, as a view on an unshared heap dies when bind's allocation grows it.
    const g = gamma.slice();
    const b = beta.slice();
    const [[xOff, yOff, accOff, scaleOff, shiftOff], done] = this.bind([
      { in: x },
      { out: y },
      { scratch: 4 * cols * this.threads }, // two float64 sums per column per thread
      { scratch: cols },
      { scratch: cols },
    ]);
    try {
      this.run(4, [xOff, accOff, cols], 1, cols * 16, rows); // bn_stats(x, acc, cols, begin, end)
      const [sum, sumSq] = this.partials(accOff, cols, rows);
      const mean = new Float32Array(cols);
      const variance = new Float32Array(cols);
      const invStd = new Float32Array(cols);
      const heap = this.memory.buffer;
      const scale = new Float32Array(heap, scaleOff, cols);
      const shift = new Float32Array(heap, shiftOff, cols);
      for (let c = 0; c < cols; c++) {
        const m = sum[c] / rows;
        const v = Math.max(sumSq[c] / rows - m * m, 0);
        mean[c] = m;
        variance[c] = v;
        invStd[c] = 1 / Math.sqrt(v + epsilon);
        scale[c] = g[c] * invStd[c];
        shift[c] = b[c] - m * scale[c];
      }
      this.run(5, [xOff, scaleOff, shiftOff, yOff, cols], -1, 0, rows); // bn_apply(x, scale, shift, y, cols, …)
      return { mean, variance, invStd };
    } finally {
      done();
    }
  }

  /** Gradients of batchNormForward: dx into `dx`; returns dgamma and dbeta. */
  batchNormBackward(
    x: Float32Array,
    dy: Float32Array,
    rows: number,
    cols: number,
    mean: Float32Array,
    invStd: Float32Array,
    gamma: Float32Array,
    dx: Float32Array,
  ): { dGamma: Float32Array; dBeta: Float32Array } {
    const g = gamma.slice(); // read in JS below (see batchNormForward)
    const [[xOff, dyOff, dxOff, accOff, meanOff, k1Off, k2Off, k3Off], done] = this.bind([
      { in: x },
      { in: dy },
      { out: dx },
      { scratch: 4 * cols * this.threads }, // two float64 sums per column per thread
      { in: mean },
      { scratch: cols },
      { scratch: cols },
      { scratch: cols },
    ]);
    try {
      this.run(6, [xOff, dyOff, meanOff, accOff, cols], 3, cols * 16, rows); // bn_grad_stats
      const [sumDy, sumDyXc] = this.partials(accOff, cols, rows);
      const dGamma = new Float32Array(cols);
      const dBeta = new Float32Array(cols);
      const heap = this.memory.buffer;
      const k1 = new Float32Array(heap, k1Off, cols);
      const k2 = new Float32Array(heap, k2Off, cols);
      const k3 = new Float32Array(heap, k3Off, cols);
      for (let c = 0; c < cols; c++) {
        const s = invStd[c];
        dBeta[c] = sumDy[c];
        dGamma[c] = sumDyXc[c] * s;
        // dx = gamma·s·(dy − Σdy/N − (x − mean)·s²·Σdy(x − mean)/N)
        k1[c] = g[c] * s;
        k2[c] = (-g[c] * s * s * s * sumDyXc[c]) / rows;
        k3[c] = (-g[c] * s * sumDy[c]) / rows;
      }
      this.run(7, [xOff, dyOff, meanOff, k1Off, k2Off, k3Off, dxOff, cols], -1, 0, rows); // bn_grad_apply
      return { dGamma, dBeta };
    } finally {
      done();
    }
  }

  /** dx = dy where 0 < x (≤ 6 for ReLU6), else 0: the ReLU / ReLU6 gradient in one pass. */
  reluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array, six: boolean): void {
    const n = x.length;
    const [[xOff, dyOff, dxOff], done] = this.bind([{ in: x }, { in: dy }, { out: dx }]);
    try {
      // relu_grad(x, dy, dx, six, n, begin, end): blocks of RELU_BLOCK elements.
      this.run(8, [xOff, dyOff, dxOff, six ? 1 : 0, n], -1, 0, Math.ceil(n / RELU_BLOCK));
    } finally {
      done();
    }
  }

  /**
   * A Dense layer's matrix products on every thread, no packing: 'nn' out[m,n] = a[m,k]·b[k,n]; 'tn'
   * out[k,n] = a[m,k]ᵀ·b[m,n] (the kernel gradient xᵀ·dy); 'nt' out[m,n] = a[m,k]·b[n,k]ᵀ (dy·Wᵀ).
   */
  gemm(
    kind: GemmKind,
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    m: number,
    k: number,
    n: number,
  ): void {
    const [[aOff, bOff, cOff], done] = this.bind([{ in: a }, { in: b }, { out }]);
    try {
      // gemm_*(a, b, c, m, k, n, begin, end): 16-column panels (nn), 4-row blocks of out (tn), 4-column
      // blocks (nt).
      const units = kind === 'nn' ? Math.ceil(n / 16) : kind === 'tn' ? Math.ceil(k / 4) : Math.ceil(n / 4);
      this.run(KERNELS.indexOf(`gemm_${kind}`), [aOff, bOff, cOff, m, k, n], -1, 0, units);
    } finally {
      done();
    }
  }

  /** One Adam step over a weight in one pass: (w, g, m, v) → (w2, m2, v2), tfjs's arithmetic exactly. */
  adamUpdate(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    out: { w: Float32Array; m: Float32Array; v: Float32Array },
    k: AdamConstants,
  ): void {
    const n = w.length;
    const consts = Float32Array.of(
      k.beta1,
      k.oneMinusBeta1,
      k.beta2,
      k.oneMinusBeta2,
      k.correction1,
      k.correction2,
      k.epsilon,
      -k.learningRate,
    );
    const [[wOff, gOff, mOff, vOff, w2Off, m2Off, v2Off, kOff], done] = this.bind([
      { in: w },
      { in: g },
      { in: m },
      { in: v },
      { out: out.w },
      { out: out.m },
      { out: out.v },
      { in: consts },
    ]);
    try {
      const args = [wOff, gOff, mOff, vOff, w2Off, m2Off, v2Off, kOff, n];
      this.run(KERNELS.indexOf('adam_update'), args, -1, 0, Math.ceil(n / ELEM_BLOCK));
    } finally {
      done();
    }
  }

  /**
   * One Keras RMSprop step over a weight in one pass: (w, g, ms) → (w2, ms2), ms' = ms·ρ + g²·(1−ρ),
   * w' = w − g·lr/(√ms' + ε), each operation rounded in float32 in that order.
   */
  rmspropUpdate(
    w: Float32Array,
    g: Float32Array,
    ms: Float32Array,
    out: { w: Float32Array; ms: Float32Array },
    k: { rho: number; oneMinusRho: number; learningRate: number; epsilon: number },
  ): void {
    const n = w.length;
    const consts = Float32Array.of(k.rho, k.oneMinusRho, k.learningRate, k.epsilon);
    const [[wOff, gOff, msOff, w2Off, ms2Off, kOff], done] = this.bind([
      { in: w },
      { in: g },
      { in: ms },
      { out: out.w },
      { out: out.ms },
      { in: consts },
    ]);
    try {
      const args = [wOff, gOff, msOff, w2Off, ms2Off, kOff, n];
      this.run(KERNELS.indexOf('rmsprop_update'), args, -1, 0, Math.ceil(n / ELEM_BLOCK));
    } finally {
      done();
    }
  }

  /**
   * GeM pooling of x [n, hw, c] (xc = max(x, eps)): y = s^(1/p) with s = mean xc^p over hw, and
   * t = mean xc^p·ln xc (for p's gradient); y, s, t [n, c]; e = xc^p [n, hw, c] when given (for the
   * backward pass).
   */
  gemForward(
    x: Float32Array,
    p: number,
    eps: number,
    dims: { n: number; hw: number; c: number },
    out: { y: Float32Array; s: Float32Array; t: Float32Array; e: Float32Array | null },
  ): void {
    const [[xOff, kOff, yOff, sOff, tOff, eOff], done] = this.bind([
      { in: x },
      { in: Float32Array.of(p, eps) },
      { out: out.y },
      { out: out.s },
      { out: out.t },
      out.e ? { out: out.e } : { scratch: 0 },
    ]);
    try {
      // gem_forward(x, k, y, s, t, e, hw, C, begin, end): images.
      const args = [xOff, kOff, yOff, sOff, tOff, out.e ? eOff : 0, dims.hw, dims.c];
      this.run(KERNELS.indexOf('gem_forward'), args, -1, 0, dims.n);
    } finally {
      done();
    }
  }

  /** GeM's gradients from gemForward's y, s, t, e: dx [n, hw, c] and p's (returned). */
  gemBackward(
    x: Float32Array,
    p: number,
    eps: number,
    dims: { n: number; hw: number; c: number },
    saved: { dy: Float32Array; y: Float32Array; s: Float32Array; t: Float32Array; e: Float32Array },
    dx: Float32Array,
  ): number {
    const [[xOff, kOff, dyOff, yOff, sOff, tOff, eOff, dxOff, dpOff], done, view] = this.bind([
      { in: x },
      { in: Float32Array.of(p, eps) },
      { in: saved.dy },
      { in: saved.y },
      { in: saved.s },
      { in: saved.t },
      { in: saved.e },
      { out: dx },
      { scratch: dims.n }, // p's gradient, one partial per image
    ]);
    try {
      // gem_backward(x, k, dy, y, s, t, e, dx, dp, hw, C, begin, end): images.
      const args = [xOff, kOff, dyOff, yOff, sOff, tOff, eOff, dxOff, dpOff, dims.hw, dims.c];
      this.run(KERNELS.indexOf('gem_backward'), args, -1, 0, dims.n);
      let dp = 0;
      for (const v of view(8)) dp += v;
      return dp;
    } finally {
      done();
    }
  }

  /** Whether thread t got any of `units` (the split run() and the helpers use): only those wrote a partial. */
  private ranUnits(t: number, units: number): boolean {
    return Math.floor((units * (t + 1)) / this.threads) > Math.floor((units * t) / this.threads);
  }

  /** The two float64 column sums (each `cols` long) that every thread with rows left at `accOff`, added up. */
  private partials(accOff: number, cols: number, rows: number): [Float64Array, Float64Array] {
    const a = new Float64Array(cols);
    const b = new Float64Array(cols);
    const heap = this.memory.buffer;
    for (let t = 0; t < this.threads; t++) {
      if (!this.ranUnits(t, rows)) continue;
      const part = new Float64Array(heap, accOff + t * cols * 16, 2 * cols);
      for (let c = 0; c < cols; c++) {
        a[c] += part[c];
        b[c] += part[cols + c];
      }
    }
    return [a, b];
  }

  /**
   * Addresses in the pool's memory for a call's operands, the function that ends the call, and fresh
   * views of operands (for outputs written from JS). An array that already lives in the pool's memory (a
   * tfjs tensor, when the pool works in tfjs's heap) is used in place; any other is copied in (inputs) or
   * back out by `done` (outputs). Scratch and copies take one block: tfjs's malloc (freed by `done`) or
   * the pool's own memory after its stacks. Addresses are taken before allocating: growing an unshared
   * heap detaches the views made before it (shared memory keeps them).
   */
  private bind(ops: Operand[]): [number[], () => void, (i: number) => Float32Array] {
    const current = this.memory.buffer;
    this.buffers.add(current);
    const arrayOf = (o: Operand) => ('in' in o ? o.in : 'out' in o ? o.out : null);
    const place = ops.map((o) => {
      const a = arrayOf(o);
      if (a === null || this.heap === null) return -1;
      if (a.buffer === current || (this.heap.shared && this.buffers.has(a.buffer))) return a.byteOffset;
      return -1;
    });
    const lengths = ops.map((o) => ('scratch' in o ? o.scratch : (arrayOf(o) as Float32Array).length));
    const room = lengths.map((n, i) => (place[i] >= 0 ? -1 : n));
    // Checked mode: a guard zone after every block of the allocation (and one before the first).
    const pad = this.check ? GUARD : 0;
    const bytes = room.reduce((sum, f) => (f < 0 ? sum : sum + align(f * 4) + pad), pad);
    let base: number;
    let block = 0;
    if (this.heap) {
      block = bytes > 0 ? this.heap.malloc(bytes + 64) : 0;
      if (bytes > 0 && !block) throw new Error(`conv pool: tfjs malloc of ${bytes} bytes failed`);
      if (block) this.scratchInUse += bytes + 64;
      base = align(block);
    } else {
      base = align(this.dataStart);
      const have = this.memory.buffer.byteLength;
      if (base + bytes > have) this.memory.grow(Math.ceil((base + bytes - have) / PAGE));
    }
    // Views after any growth the allocation caused.
    const buffer = this.memory.buffer;
    this.buffers.add(buffer);
    // Checked mode: the block starts as canaries, so even a stray write of a value that was there shows.
    if (this.check && bytes > 0) new Uint8Array(buffer, base, bytes).fill(0xa5);
    let at = base + pad;
    const copyBack: [Float32Array, number][] = [];
    const addrs = ops.map((o, i) => {
      if (room[i] < 0) return place[i];
      const addr = at;
      at += align(room[i] * 4) + pad;
      if ('in' in o) new Float32Array(buffer, addr, lengths[i]).set(o.in);
      else if ('out' in o) copyBack.push([o.out, addr]);
      return addr;
    });
    const view = (i: number) => new Float32Array(this.memory.buffer, addrs[i], lengths[i]);
    const verify = this.check ? this.guard(ops, addrs, lengths) : null;
    this.ran = [];
    const done = () => {
      let problem: unknown;
      try {
        verify?.();
      } catch (e) {
        problem = e;
      }
      const now = this.memory.buffer;
      for (const [out, addr] of copyBack) out.set(new Float32Array(now, addr, out.length));
      // After a failed check the allocator's own bytes may be hit too: leak the block rather than free it.
      if (block && !problem) {
        this.heap?.free(block);
        this.scratchInUse -= bytes + 64;
      }
      if (problem) throw problem;
    };
    return [addrs, done, view];
  }

  /**
   * Checked mode, called once a call's operands are in place: remembers the bytes next to every operand
   * (GUARD before and after, except where another operand may write) and every input, and returns the
   * check to run after the kernels: any change there is a write outside the call's operands (or into an
   * input), thrown as an error naming the kernels and the operand. Operands must lie inside the heap and
   * an output may not overlap another operand.
   */
  private guard(ops: Operand[], addrs: number[], lengths: number[]): () => void {
    const heapBytes = this.memory.buffer.byteLength;
    const ranges = ops.map((o, i) => ({
      kind: 'in' in o ? 'in' : 'out' in o ? 'out' : 'scratch',
      start: addrs[i],
      end: addrs[i] + lengths[i] * 4,
    }));
    const where = (i: number) =>
      `operand ${i} (${ranges[i].kind}, ${lengths[i]} floats at ${ranges[i].start})`;
    const caller = callerName();
    ranges.forEach((r, i) => {
      if (r.start < 0 || r.end > heapBytes)
        throw new Error(`conv pool check: ${caller}: ${where(i)} lies outside the heap (${heapBytes} bytes)`);
      if (r.kind === 'in') return;
      ranges.forEach((q, j) => {
        if (j !== i && r.start < q.end && q.start < r.end && r.end > r.start && q.end > q.start)
          throw new Error(`conv pool check: ${caller}: ${where(i)} overlaps ${where(j)}`);
      });
    });
    const writable = ranges
      .filter((r) => r.kind !== 'in' && r.end > r.start)
      .sort((a, b) => a.start - b.start);
    type Watch = { label: string; at: number; bytes: Uint8Array };
    const watches: Watch[] = [];
    const heap = new Uint8Array(this.memory.buffer);
    const watch = (label: string, from: number, to: number) => {
      // [from, to) less the bytes an operand of the call may write.
      let at = Math.max(0, from);
      const end = Math.min(heapBytes, to);
      for (const w of writable) {
        if (w.end <= at) continue;
        if (w.start >= end) break;
        if (w.start > at) watches.push({ label, at, bytes: heap.slice(at, w.start) });
        at = Math.max(at, w.end);
      }
      if (at < end) watches.push({ label, at, bytes: heap.slice(at, end) });
    };
    ranges.forEach((r, i) => {
      if (r.end <= r.start) return;
      watch(`the ${GUARD} bytes before ${where(i)}`, r.start - GUARD, r.start);
      watch(`the ${GUARD} bytes after ${where(i)}`, r.end, r.end + GUARD);
      if (r.kind === 'in') watch(where(i), r.start, r.end);
    });
    return () => {
      const now = new Uint8Array(this.memory.buffer);
      for (const w of watches) {
        let changed = 0;
        for (let k = 0; k < w.bytes.length; k++) if (now[w.at + k] !== w.bytes[k]) changed++;
        if (changed)
          throw new Error(
            `conv pool check: ${caller} (${this.ran.join(', ') || 'no kernel'}) changed ${changed} byte(s) in ${w.label}`,
          );
      }
    };
  }

  private run(kernel: number, args: number[], scratchArg: number, scratchStride: number, units: number) {
    this.ran.push(KERNELS[kernel]);
    const ctl = this.control;
    const header = [kernel, args.length, scratchArg, scratchStride, units, this.threads];
    for (let i = 0; i < header.length; i++) ctl[8 + i] = header[i] | 0;
    for (let i = 0; i < args.length; i++) ctl[16 + i] = args[i] | 0;
    if (this.workers.length) {
      Atomics.store(ctl, 1, 0);
      Atomics.add(ctl, 0, 1);
      Atomics.notify(ctl, 0);
    }
    const end = Math.floor(units / this.threads);
    if (end > 0) this.main[KERNELS[kernel]](...args, 0, end);
    for (let done = Atomics.load(ctl, 1); done < this.workers.length; done = Atomics.load(ctl, 1)) {
      Atomics.wait(ctl, 1, done);
    }
  }

  /** Stops the helpers (tests; the process exits fine without it). */
  async close(): Promise<void> {
    Atomics.store(this.control, 2, 1);
    Atomics.add(this.control, 0, 1);
    Atomics.notify(this.control, 0);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}

/** Bytes watched on each side of every operand in checked mode. */
const GUARD = 64;

/** The ConvPool method that called bind (for checked mode's errors). */
function callerName(): string {
  const lines = (new Error().stack ?? '').split('\n').map((l) => l.trim());
  const call = lines.find((l) => /^at ConvPool\.(?!bind|guard)\w+/.test(l));
  return call?.match(/^at (ConvPool\.\w+)/)?.[1] ?? 'ConvPool';
}

// Arithmetic, not bit operations: offsets pass 2^31 once the shared memory grows past 2 GiB.
const align = (n: number) => Math.ceil(n / 64) * 64;

/**
 * The FMA build when asked for and the engine takes it: relaxed SIMD is behind a flag in Node 20's V8
 * (default from V8 11.4), and the flag can still be set at run time, before the module is compiled.
 */
function loadModule(fma: boolean, shared: boolean): { module: object; fma: boolean } {
  const read = (name: string) =>
    fs.readFileSync(fileURLToPath(new URL(`../../wasm/${name}`, import.meta.url)));
  const base = shared ? 'conv_pool' : 'conv_pool_single';
  if (fma) {
    const bytes = read(`${base}_fma.wasm`);
    if (!WA.validate(bytes)) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    if (WA.validate(bytes)) return { module: new WA.Module(bytes), fma: true };
  }
  return { module: new WA.Module(read(`${base}.wasm`)), fma: false };
}

let threads = 1;
let tfjsHeap: TfjsHeap | null = null;
let shared: ConvPool | null = null;

/** The process's pool (created on first use), as configureConvPool set it. */
export function convPool(): ConvPool {
  shared ??= new ConvPool(threads, tfjsHeap ? { heap: tfjsHeap } : {});
  return shared;
}

/**
 * Threads of the conv pool (the wasm backend's own count), and tfjs's heap when its memory is shared
 * (the threaded build) so the pool works on tensors in place; initBackend sets both.
 */
export function configureConvPool(n: number, heap: TfjsHeap | null = null): void {
  const want = Math.max(1, Math.floor(n));
  if (want === threads && heap === tfjsHeap) return;
  threads = want;
  tfjsHeap = heap;
  const old = shared;
  shared = null;
  void old?.close();
}

/** tfjs-backend-wasm's heap, for the pool to work in (null when the backend does not expose it). */
export function tfjsHeapOf(backend: unknown): TfjsHeap | null {
  type Module = {
    wasmMemory?: SharedMemory;
    asm?: { memory?: SharedMemory };
    _malloc?: unknown;
    _free?: unknown;
  };
  const m = (backend as { wasm?: Module }).wasm;
  // The threaded build exports its memory as wasmMemory; the one-thread build only as asm.memory.
  const memory = m?.wasmMemory ?? m?.asm?.memory;
  if (!m || !memory || typeof m._malloc !== 'function' || typeof m._free !== 'function') return null;
  const shared = memory.buffer instanceof SharedArrayBuffer;
  const malloc = m._malloc as (n: number) => number;
  const free = m._free as (p: number) => void;
  // malloc returns a signed i32 past 2 GiB: as an address, unsigned.
  return { memory, shared, malloc: (n) => malloc(n) >>> 0, free: (p) => free(p) };
}
