import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The depthwise filter gradient of wasm/kernels.c, in its own small WebAssembly instance. Operands are
 * copied in from the tfjs heap and the result copied out: a memcpy each, cheap next to the arithmetic.
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

interface KernelExports {
  memory: WasmMemory;
  dw_filter_grad(x: number, dy: number, acc: number, ...dims: number[]): void;
  heap_base(): number;
}

let exports: KernelExports | null = null;

function instance(): KernelExports {
  if (exports === null) {
    const file = fileURLToPath(new URL('../../wasm/kernels.wasm', import.meta.url));
    const module = new WA.Module(fs.readFileSync(file));
    exports = new WA.Instance(module, {}).exports as unknown as KernelExports;
  }
  return exports;
}

/** Offsets of consecutive 16-byte aligned buffers of the given byte sizes; grows the memory to fit. */
function layout(g: KernelExports, bytes: number[]): number[] {
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
