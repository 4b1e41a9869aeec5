// The conv pool's bounds-checked mode (HEADBENCH_WASM_CHECK=1, issue #11): a kernel that writes past its
// output, into an input or outside the heap is stopped with an error naming the call, on both builds
// (vitest projects engine and engine-1-thread).
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConvPool, initBackend, type TfjsHeap, tfjsHeapOf } from '../src/index.js';
import { rand } from './helpers.js';

describe("the conv pool's checked mode", () => {
  let heap: TfjsHeap;
  let pool: ConvPool;
  const n = 2 * 4096;
  const x = rand(n, 1);
  const dy = rand(n, 2);

  beforeAll(async () => {
    const info = await initBackend('wasm');
    heap = tfjsHeapOf(tf.findBackend('wasm')) as TfjsHeap;
    pool = new ConvPool(info.threads, { heap, check: true });
    expect(pool.check).toBe(true);
    expect(pool.inPlace).toBe(true);
  });

  it('lets a well-formed call through with the unchecked result', () => {
    const checked = new Float32Array(n);
    pool.reluGrad(x, dy, checked, false);
    const want = x.map((v, i) => (v > 0 ? dy[i] : 0));
    expect(Array.from(checked)).toEqual(Array.from(want));
    expect(pool.scratchInUse).toBe(0);
  });

  it('names the call and the operand when a kernel writes past a copied output', () => {
    // relu_grad writes n floats; the output holds 4 fewer: 16 bytes land in the guard after it.
    const short = new Float32Array(n - 4);
    expect(() => pool.reluGrad(x, dy, short, false)).toThrow(
      /^conv pool check: ConvPool\.reluGrad \(relu_grad\) changed \d+ byte\(s\) in the 64 bytes after operand 2 \(out, 8188 floats at \d+\)$/,
    );
  });

  it('does the same for an output that lives in the heap (used in place)', () => {
    // Room for the overrun inside our own block, so tfjs's allocator is never hit.
    const block = heap.malloc((n + 64) * 4);
    try {
      const view = () => new Float32Array(heap.memory.buffer, block, n - 4);
      expect(() => pool.reluGrad(x, dy, view(), false)).toThrow(
        /ConvPool\.reluGrad \(relu_grad\) changed \d+ byte\(s\) in the 64 bytes after operand 2 \(out, 8188 floats at \d+\)/,
      );
    } finally {
      heap.free(block);
    }
  });

  it('refuses an output that overlaps an input', () => {
    const block = heap.malloc(2 * n * 4);
    try {
      const a = new Float32Array(heap.memory.buffer, block, n);
      a.set(x);
      const b = new Float32Array(heap.memory.buffer, block + 64, n);
      expect(() => pool.reluGrad(a, dy, b, false)).toThrow(
        /conv pool check: ConvPool\.reluGrad: operand 2 \(out, 8192 floats at \d+\) overlaps operand 0 \(in/,
      );
    } finally {
      heap.free(block);
    }
  });
});
