import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The packing-free f32 matrix products of wasm/gemm.c (see there for why they exist), in their own
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
  heap_base(): number;
}

let exports: GemmExports | null = null;

function instance(): GemmExports {
  if (exports === null) {
    const file = fileURLToPath(new URL('../../wasm/gemm.wasm', import.meta.url));
    const module = new WA.Module(fs.readFileSync(file));
    exports = new WA.Instance(module, {}).exports as unknown as GemmExports;
  }
  return exports;
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
  const base = (g.heap_base() + 15) & ~15;
  const aOff = base;
  const bOff = aOff + ((m * k * 4 + 15) & ~15);
  const cOff = bOff + ((k * n * 4 + 15) & ~15);
  const end = cOff + m * n * 4;
  const have = g.memory.buffer.byteLength;
  if (end > have) g.memory.grow(Math.ceil((end - have) / 65536));
  const heap = g.memory.buffer;
  new Float32Array(heap, aOff, m * k).set(a);
  new Float32Array(heap, bOff, k * n).set(b);
  (kind === 'nn' ? g.gemm_nn : g.gemm_nt)(aOff, bOff, cOff, m, k, n);
  out.set(new Float32Array(heap, cOff, m * n));
}
