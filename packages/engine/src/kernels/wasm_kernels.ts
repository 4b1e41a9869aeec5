import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The packing-free f32 matrix products of wasm/kernels.c (see there for why they exist), in their own
 * small WebAssembly instance. Operands are copied in from the tfjs heap and the result copied out:
 * a memcpy each, cheap next to the multiplication.
 */
interface WasmMemory {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}
/** The few WebAssembly JS API calls used here (the project's TS lib has no WebAssembly typings). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface GemmExports {
  memory: WasmMemory;
  gemm_nn(a: number, b: number, c: number, m: number, k: number, n: number): void;
  gemm_nt(a: number, b: number, c: number, m: number, k: number, n: number): void;
  dw_filter_grad(x: number, dy: number, acc: number, ...dims: number[]): void;
  heap_base(): number;
}

let exports: GemmExports | null = null;

function instance(): GemmExports {
  if (exports === null) {
    const file = fileURLToPath(new URL('../../wasm/kernels.wasm', import.meta.url));
    const module = new WA.Module(fs.readFileSync(file));
    exports = new WA.Instance(module, {}).exports as unknown as GemmExports;
  }
  return exports;
}

/** Offsets of consecutive 16-byte aligned buffers of the given byte sizes; grows the memory to fit. */
function layout(g: GemmExports, bytes: number[]): number[] {
  let at = (g.heap_base() + 15) & ~15;
  const offs = bytes.map((b) => {
    const o = at;
    at += (b + 15) & ~15;
    return o;
  });
  const have = g.memory.buffer.byteLength;
  if (at > have) g.memory.grow(Math.ceil((at - have) / 65536));
  return offs;
}

/**
 * out[m,n] = a[m,k] . b, where b is [k,n] ('nn') or [n,k] used transposed ('nt'). All row-major.
 */
export function gemm(
  kind: 'nn' | 'nt',
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
  m: number,
  k: number,
  n: number,
): void {
  const g = instance();
  const [aOff, bOff, cOff] = layout(g, [m * k * 4, k * n * 4, m * n * 4]);
  const heap = g.memory.buffer;
  new Float32Array(heap, aOff, m * k).set(a);
  new Float32Array(heap, bOff, k * n).set(b);
  (kind === 'nn' ? g.gemm_nn : g.gemm_nt)(aOff, bOff, cOff, m, k, n);
  out.set(new Float32Array(heap, cOff, m * n));
}

/** A sliding-window op over NHWC x [n,h,w,c] → [n,oh,ow,c]: window kh×kw, strides, dilations, top/left pad. */
export interface DepthwiseGeometry {
  n: number;
  h: number;
  w: number;
  c: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  top: number;
  left: number;
}

/** Depthwise filter gradient for channel multiplier 1: out [kh*kw*c] (see dw_filter_grad in kernels.c). */
export function depthwiseFilterGrad(
  x: Float32Array,
  dy: Float32Array,
  out: Float32Array,
  g: DepthwiseGeometry,
): void {
  const k = instance();
  const accLen = g.kh * g.kw * g.c;
  const [xOff, dyOff, accOff] = layout(k, [x.length * 4, dy.length * 4, accLen * 8]);
  const heap = k.memory.buffer;
  new Float32Array(heap, xOff, x.length).set(x);
  new Float32Array(heap, dyOff, dy.length).set(dy);
  k.dw_filter_grad(
    xOff,
    dyOff,
    accOff,
    g.n,
    g.h,
    g.w,
    g.c,
    g.oh,
    g.ow,
    g.kh,
    g.kw,
    g.sh,
    g.sw,
    g.dh,
    g.dw,
    g.top,
    g.left,
  );
  out.set(new Float64Array(heap, accOff, accLen));
}
