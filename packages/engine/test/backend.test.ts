import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { readEnv } from '@headbench/spec';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ADDED_KERNELS, currentBackendInfo, initBackend, REPLACED_KERNELS } from '../src/index.js';

const require = createRequire(import.meta.url);
const loads = async (name: string): Promise<boolean> => {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
};
// Unusable on this CPU box (absent, or installed without its native binding), usable on GPU nodes:
// the assertions differ, both are real.
const tfjsNodeLoads = (await loads('@tensorflow/tfjs-node-gpu')) || (await loads('@tensorflow/tfjs-node'));

describe('initBackend', () => {
  it('wasm: reports itself, registers the training kernels and gradients, and is idempotent', async () => {
    expect(currentBackendInfo()).toBeNull();
    const info = await initBackend('wasm');
    expect(info).toEqual({
      name: 'wasm',
      requested: 'wasm',
      tfjsNode: false,
      gpu: false,
      threads: info.threads,
    });
    expect(info.threads).toBeGreaterThanOrEqual(1);
    // Every core by default (the threaded-SIMD binary, started from real worker files), else the override.
    const wanted = readEnv(process.env).HEADBENCH_WASM_THREADS ?? os.availableParallelism();
    expect(info.threads).toBe(wanted);
    expect(tf.getBackend()).toBe('wasm');
    for (const k of [...ADDED_KERNELS, ...REPLACED_KERNELS]) expect(tf.getKernel(k, 'wasm'), k).toBeDefined();
    expect(tf.getGradient('Conv2D')).toBeDefined();
    expect(await initBackend('wasm')).toBe(info);
    expect(currentBackendInfo()).toBe(info);
  });

  it("'tensorflow' either loads tfjs-node or says why it cannot and how to install it", async () => {
    if (tfjsNodeLoads) {
      const info = await initBackend('tensorflow');
      expect(info.name).toBe('tensorflow');
      expect(info.tfjsNode).toBe(true);
    } else {
      const err =
        /tfjs-node-gpu is (not installed|installed but failed to load).*tfjs-node is (not installed|installed but failed to load).*npm install -w @headbench\/engine @tensorflow\/tfjs-node@/s;
      await expect(initBackend('tensorflow')).rejects.toThrow(err);
      // The failure is not cached, and the active backend is untouched.
      await expect(initBackend('tensorflow')).rejects.toThrow(err);
      expect(tf.getBackend()).toBe('wasm');
    }
  });

  it("'auto' prefers tfjs-node and otherwise uses wasm, never cpu", async () => {
    const info = await initBackend('auto');
    expect(info.requested).toBe('auto');
    expect(info.name).toBe(tfjsNodeLoads ? 'tensorflow' : 'wasm');
    expect(tf.getBackend()).toBe(info.name);
  });

  it("'cpu' only when asked, and switching back re-activates the earlier backend", async () => {
    const cpu = await initBackend('cpu');
    expect(cpu).toMatchObject({ name: 'cpu', requested: 'cpu', threads: 1 });
    expect(tf.getBackend()).toBe('cpu');
    const wasm = await initBackend('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(currentBackendInfo()).toBe(wasm);
  });

  it('finds the .wasm binaries from any working directory', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/cwd-check.ts', import.meta.url));
    const tsx = pathToFileURL(require.resolve('tsx')).href;
    const cwd = os.tmpdir();
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', tsx, fixture], { cwd });
    const out = JSON.parse(stdout.trim().split('\n').pop() ?? '{}');
    expect(path.resolve(out.cwd)).toBe(path.resolve(cwd));
    expect(out.backend).toBe('wasm');
    expect(out.info.name).toBe('wasm');
    // d(sum conv)/dW over a 4x4 SAME input of ones: taps see 16 (centre), 12 (edges), 9 (corners)
    // positions: (16 + 4*12 + 4*9) per (in, out) channel pair, times 2*2 pairs.
    expect(out.sum).toBe(400);
  });
});
