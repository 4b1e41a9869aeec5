// Forced growth of tfjs's wasm heap at chosen moments (tests and the stress bench of issue #11). On the
// one-thread build growing the heap replaces its ArrayBuffer and detaches every view made before, so code
// that keeps a view or an address across an allocation breaks only when the heap happens to grow there.
// This makes it grow there on purpose: before a tensor's allocation (between kernels, inside a training
// step) and before the conv pool's scratch allocation (inside a kernel call).
import * as tf from '@tensorflow/tfjs-core';
import { currentBackendInfo } from './backend.js';
import { configureConvPool, type TfjsHeap, tfjsHeapOf } from './kernels/conv_pool.js';

export interface HeapGrowthPlan {
  /** Mean allocations between growths. */
  every: number;
  /** Gaps drawn from this seed (uniform in 1..2·every); without it, exactly `every`. */
  seed?: number;
  /** Growths at most (each holds about a third of the heap until release). */
  maxEvents?: number;
}

export interface HeapGrowthStats {
  /** Times a ballast block was allocated, and times the heap's size actually changed. */
  events: number;
  grew: number;
  /** Growths before a tensor allocation (`tensor`) and before the conv pool's scratch (`pool`). */
  sites: { tensor: number; pool: number };
}

interface WasmModule {
  _malloc(n: number): number;
  _free(p: number): void;
}

/**
 * Installs the plan on the active wasm backend; `release` frees the ballast and restores the allocator.
 * The ballast is never written: it only moves the top of the heap.
 */
export function forceHeapGrowth(plan: HeapGrowthPlan): {
  stats: HeapGrowthStats;
  release(): void;
} {
  const backend = tf.findBackend('wasm') as unknown as { wasm: WasmModule } | undefined;
  const heap = backend ? tfjsHeapOf(backend) : null;
  if (!backend || !heap) throw new Error('forceHeapGrowth: the wasm backend is not initialised');
  const wasm = backend.wasm;
  // Emscripten's _malloc starts as a stub that replaces itself with the real export on first call (which
  // would drop a wrapper installed before): make that happen first.
  wasm._free(wasm._malloc(16));
  const malloc = wasm._malloc;
  const stats: HeapGrowthStats = { events: 0, grew: 0, sites: { tensor: 0, pool: 0 } };
  const ballast: number[] = [];
  const max = plan.maxEvents ?? 10;
  let state = (plan.seed ?? 0) * 2654435761 + 1;
  const gap = () => {
    if (plan.seed === undefined) return plan.every;
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return 1 + (state % (2 * plan.every));
  };
  let next = gap();
  const maybeGrow = (site: 'tensor' | 'pool') => {
    if (stats.events >= max || --next > 0) return;
    next = gap();
    const before = heap.memory.buffer.byteLength;
    // More than the 20 % emscripten grows by ahead, so the request cannot fit in what is free.
    const block = malloc.call(wasm, Math.ceil(before * 0.34)) >>> 0;
    if (!block) return;
    ballast.push(block);
    stats.events++;
    if (heap.memory.buffer.byteLength !== before) {
      stats.grew++;
      stats.sites[site]++;
    }
  };
  wasm._malloc = (n: number) => {
    maybeGrow('tensor');
    return malloc.call(wasm, n);
  };
  const poolHeap: TfjsHeap = {
    ...heap,
    // The real export, not tfjsHeapOf's: that may be emscripten's stub, which would drop the wrapper above.
    malloc: (n) => {
      maybeGrow('pool');
      return malloc.call(wasm, n) >>> 0;
    },
  };
  const threads = currentBackendInfo()?.threads ?? 1;
  configureConvPool(threads, poolHeap);
  return {
    stats,
    release() {
      wasm._malloc = malloc;
      configureConvPool(threads, heap);
      for (const b of ballast.splice(0)) heap.free(b);
    },
  };
}
