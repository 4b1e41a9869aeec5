import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Runs wasm/winograd.wasm on several threads: one shared WebAssembly memory, one instance on this thread
 * and one per helper worker (each with its own stack), woken through a control block with Atomics.
 * The calling thread does its share too and blocks until the helpers are done, so a kernel call stays
 * synchronous, as tfjs kernels must be. Helpers are unref'd: they never keep a process alive.
 */
interface SharedMemory {
  buffer: SharedArrayBuffer;
  grow(pages: number): number;
}
interface WasmGlobal {
  value: number;
}
interface WinogradExports {
  __stack_pointer: WasmGlobal;
  __heap_base: WasmGlobal;
  wino_filter(g: number, u: number, n: number): void;
  wino_conv(...args: number[]): void;
}
/** The few WebAssembly JS API calls used here (the project's TS lib has no WebAssembly typings). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => SharedMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const PAGE = 65536;
const STACK = 65536;
/** Control block words: [0] generation, [1] helpers done, [2] stop, [8..28) the job. */
const JOB = 8;

export interface WinogradConv {
  x: Float32Array;
  filter: Float32Array;
  bias: Float32Array | null;
  n: number;
  h: number;
  w: number;
  c: number;
  oc: number;
  oh: number;
  ow: number;
  padTop: number;
  padLeft: number;
  /** 0 linear, 1 relu, 2 relu6 */
  activation: 0 | 1 | 2;
}

export class WinogradPool {
  private memory: SharedMemory;
  private main: WinogradExports;
  private control = new Int32Array(new SharedArrayBuffer(64 * 4));
  private workers: Worker[] = [];
  private dataStart: number;

  constructor(readonly threads: number) {
    const file = fileURLToPath(new URL('../../wasm/winograd.wasm', import.meta.url));
    const module = new WA.Module(fs.readFileSync(file));
    this.memory = new WA.Memory({ initial: 256, maximum: 65536, shared: true });
    this.main = new WA.Instance(module, { env: { memory: this.memory } }).exports as WinogradExports;
    // Helper stacks sit after the module's own (stack-first) region; data after them.
    const heapBase = this.main.__heap_base.value;
    this.dataStart = heapBase + (threads - 1) * STACK;
    for (let i = 1; i < threads; i++) {
      const worker = new Worker(new URL('./winograd_worker.mjs', import.meta.url), {
        workerData: {
          module,
          memory: this.memory,
          control: this.control.buffer,
          index: i,
          stackTop: heapBase + i * STACK,
        },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** y = conv3x3(x, filter) + bias, activation; stride 1, NHWC, C and OC multiples of 4. */
  conv(a: WinogradConv, out: Float32Array): void {
    const { c, oc } = a;
    const tiles = a.n * Math.ceil(a.oh / 2) * Math.ceil(a.ow / 2);
    // Tiles per chunk: the chunk's transformed input (16·chunk·C floats) about 2 MB, in cache for the GEMMs.
    const chunk = Math.max(16, Math.min(512, Math.floor(32768 / Math.max(c, oc))));
    const scratchFloats = 16 * chunk * c + 16 * chunk * oc + 256 * 8;
    const sizes = [a.x.length, 16 * c * oc, oc, out.length, scratchFloats * this.threads, 9 * c * oc];
    let at = align(this.dataStart);
    const [xOff, uOff, bOff, yOff, sOff, gOff] = sizes.map((floats) => {
      const o = at;
      at = align(at + floats * 4);
      return o;
    });
    const have = this.memory.buffer.byteLength;
    if (at > have) this.memory.grow(Math.ceil((at - have) / PAGE));
    const heap = this.memory.buffer;
    new Float32Array(heap, xOff, a.x.length).set(a.x);
    new Float32Array(heap, gOff, 9 * c * oc).set(a.filter);
    if (a.bias) new Float32Array(heap, bOff, oc).set(a.bias);
    this.main.wino_filter(gOff, uOff, c * oc);

    const job = [
      xOff,
      uOff,
      a.bias ? bOff : 0,
      yOff,
      sOff,
      a.n,
      a.h,
      a.w,
      c,
      oc,
      a.oh,
      a.ow,
      a.padTop,
      a.padLeft,
      a.activation,
      0,
      tiles,
      this.threads,
      chunk,
      scratchFloats * 4,
    ];
    const ctl = this.control;
    for (let i = 0; i < job.length; i++) ctl[JOB + i] = job[i] | 0;
    if (this.workers.length) {
      Atomics.store(ctl, 1, 0);
      Atomics.add(ctl, 0, 1);
      Atomics.notify(ctl, 0);
    }
    const end = Math.floor(tiles / this.threads);
    if (end > 0) {
      this.main.wino_conv(xOff, uOff, job[2], yOff, sOff, ...job.slice(5, 15), 0, end, chunk);
    }
    for (let done = Atomics.load(ctl, 1); done < this.workers.length; done = Atomics.load(ctl, 1)) {
      Atomics.wait(ctl, 1, done);
    }
    out.set(new Float32Array(heap, yOff, out.length));
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

const align = (n: number) => (n + 63) & ~63;
