import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { readEnv } from '@headbench/spec';
import * as tf from '@tensorflow/tfjs-core';
import { configureConvPool, tfjsHeapOf } from './kernels/conv_pool.js';
import { registerTrainingKernels } from './kernels/index.js';
import { useOnePassReluGradients } from './kernels/relu_grad.js';
import { useFusedBatchNormTraining } from './layers/batch_norm_training.js';
import { usePlainConvTraining } from './layers/conv_training.js';
import { useOnePassAdam } from './optimizers/adam.js';
import { unrefPoolWorkers, withNodeThreads } from './wasm_threads.js';

export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** tfjs backend name now active: 'tensorflow', 'wasm' or 'cpu'. */
  name: string;
  /** What the caller asked for. */
  requested: string;
  /** True when the native TensorFlow binding (tfjs-node or tfjs-node-gpu) is in use. */
  tfjsNode: boolean;
  /** True when tfjs-node-gpu (CUDA build) is in use. */
  gpu: boolean;
  /** Threads the backend computes with. */
  threads: number;
}

const NODE_INSTALL_HINT =
  'install it with `npm install -w @headbench/engine @tensorflow/tfjs-node@4.22.0` ' +
  '(or @tensorflow/tfjs-node-gpu@4.22.0 on a CUDA machine); its install step downloads libtensorflow';

const require = createRequire(import.meta.url);
const cache = new Map<BackendPreference, Promise<BackendInfo>>();
let current: BackendInfo | null = null;
// Serialises initialisations so two callers never race tf.setBackend.
let queue: Promise<unknown> = Promise.resolve();

/** The info of the backend most recently initialised by initBackend, or null before the first call. */
export function currentBackendInfo(): BackendInfo | null {
  return current;
}

/**
 * Picks and initialises the tfjs backend. 'auto' prefers tfjs-node-gpu, then tfjs-node, then wasm with
 * the headbench training kernels. 'cpu' is only used when asked for (it is 30-200x slower than wasm).
 * Calling again with the same preference returns the same info without re-initialising.
 */
export function initBackend(preference: BackendPreference = 'auto'): Promise<BackendInfo> {
  const cached = cache.get(preference);
  if (cached !== undefined) {
    // Re-activate it in case another preference was initialised in between.
    return cached.then(async (info) => {
      if (tf.getBackend() !== info.name) {
        await tf.setBackend(info.name);
        current = info;
      }
      return info;
    });
  }
  const run = queue.then(() => initUncached(preference));
  queue = run.catch(() => undefined);
  cache.set(preference, run);
  // A failed init must not be cached: a later call (e.g. after installing tfjs-node) may succeed.
  run.catch(() => cache.delete(preference));
  return run;
}

async function initUncached(preference: BackendPreference): Promise<BackendInfo> {
  let info: BackendInfo;
  switch (preference) {
    case 'auto':
      info = (await tryTfjsNode(preference)) ?? (await initWasm(preference));
      break;
    case 'tensorflow': {
      const node = await tryTfjsNode(preference);
      if (node === null) {
        throw new Error(
          `Backend 'tensorflow' requested but tfjs-node is not usable: ${tfjsNodeFailures.join('; ')}. ` +
            `To use it, ${NODE_INSTALL_HINT}; if it is installed but its native binding is missing, rerun ` +
            '`npm rebuild @tensorflow/tfjs-node` where libtensorflow can be downloaded.',
        );
      }
      info = node;
      break;
    }
    case 'wasm':
      info = await initWasm(preference);
      break;
    case 'cpu':
      info = await initCpu(preference);
      break;
    default:
      throw new Error(`Unknown backend preference '${String(preference)}' (auto, tensorflow, wasm or cpu)`);
  }
  await ensureGradients();
  // Fused BatchNorm training on wasm; on every backend, training a BN layer without gamma works.
  useFusedBatchNormTraining();
  // Linear convs skip input gradients nobody needs (the images', the frozen blocks').
  usePlainConvTraining();
  // After ensureGradients: importing tfjs-layers registers every stock gradient, ours must come later.
  useOnePassReluGradients();
  // Adam in one pass per weight on wasm (bit for bit tfjs's arithmetic); stock elsewhere.
  useOnePassAdam();
  current = info;
  return info;
}

/**
 * tfjs-core's node bundle registers no gradients (its ESM register_all_gradients cannot be loaded by
 * Node as CommonJS); tfjs-layers' bundle registers all of them when imported. Without them no model
 * can train, so load it if nothing has registered them yet.
 */
async function ensureGradients(): Promise<void> {
  if (tf.getGradient('Conv2D') != null) return;
  const failure = await importOptional('@tensorflow/tfjs-layers');
  if (tf.getGradient('Conv2D') == null) {
    process.emitWarning(
      `@headbench/engine: no tfjs gradients are registered (${failure ?? 'tfjs-layers registered none'}); ` +
        'training will fail until @tensorflow/tfjs-layers is imported',
    );
  }
}

/**
 * Loads a module by a name TypeScript cannot check (an optional dependency that may be absent).
 * Returns null on success, else why it failed.
 */
async function importOptional(name: string): Promise<string | null> {
  try {
    await import(name);
    return null;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      if (String((err as Error).message).includes(name)) return `${name} is not installed`;
    }
    const first = String((err as Error).message ?? err).split('\n')[0];
    return `${name} is installed but failed to load (${first})`;
  }
}

const tfjsNodeFailures: string[] = [];

/** Why `pkg` cannot load without trying to: not installed, or installed without `tfjs_binding.node`. */
function missingNativeBinding(pkg: string): string | null {
  let dir: string;
  try {
    dir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return `${pkg} is not installed`;
  }
  const lib = path.join(dir, 'lib');
  const found =
    fs.existsSync(lib) &&
    fs
      .readdirSync(lib)
      .some((d) => d.startsWith('napi-v') && fs.existsSync(path.join(lib, d, 'tfjs_binding.node')));
  return found
    ? null
    : `${pkg} is installed but failed to load (its native binding lib/napi-v*/tfjs_binding.node is missing)`;
}

async function tryTfjsNode(requested: BackendPreference): Promise<BackendInfo | null> {
  tfjsNodeFailures.length = 0;
  for (const [pkg, gpu] of [
    ['@tensorflow/tfjs-node-gpu', true],
    ['@tensorflow/tfjs-node', false],
  ] as const) {
    // Importing a tfjs-node whose native binding is missing registers its kernels before it fails, and
    // the second package then prints a warning for every kernel; check for the binding first.
    const failure = missingNativeBinding(pkg) ?? (await importOptional(pkg));
    if (failure !== null) {
      tfjsNodeFailures.push(failure);
      // Installed but broken (typically: its install step could not download libtensorflow) is worth
      // a warning even when we fall back, since it silently costs 10x+ in speed.
      if (!failure.endsWith('is not installed') && requested === 'auto')
        process.emitWarning(`@headbench/engine: ${failure}`);
      continue;
    }
    if (!(await tf.setBackend('tensorflow'))) {
      tfjsNodeFailures.push(`${pkg} loaded but the 'tensorflow' backend failed to initialise`);
      continue;
    }
    await tf.ready();
    return { name: 'tensorflow', requested, tfjsNode: true, gpu, threads: os.availableParallelism() };
  }
  return null;
}

let wasmPathsSet = false;
// tfjs creates the wasm backend once per process; threads can only be chosen before that.
let wasmInitialised = false;

/**
 * Threads the wasm backend computes with: HEADBENCH_WASM_THREADS if set (1 = the single-threaded SIMD
 * binary), else every core. tfjs alone would use at most cores/2, and in Node none at all.
 */
export function wasmThreadsWanted(): number {
  return readEnv(process.env).HEADBENCH_WASM_THREADS ?? os.availableParallelism();
}

async function initWasm(requested: BackendPreference): Promise<BackendInfo> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (!wasmPathsSet) {
    // The .wasm binaries sit next to the package's main file; an absolute prefix works from any cwd.
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(dir + path.sep);
    wasmPathsSet = true;
  }
  const threads = wasmThreadsWanted();
  let ok: boolean;
  if (threads > 1 && !wasmInitialised) {
    // First initialisation: pick the threaded-SIMD binary (see wasm_threads.ts for how it runs in Node).
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    wasm.setThreadsCount(threads);
    ok = await withNodeThreads(threads, () => tf.setBackend('wasm'));
    if (ok) unrefPoolWorkers(tf.findBackend('wasm'));
  } else {
    ok = await tf.setBackend('wasm');
  }
  wasmInitialised = true;
  if (!ok) {
    throw new Error('The tfjs wasm backend failed to initialise (see the warning tfjs printed above)');
  }
  await tf.ready();
  // Registered after the backend is up, so the stock kernels we replace have already run their setup.
  registerTrainingKernels();
  // The conv pool works in tfjs's heap, on tensors in place (shared on the threaded build, or not).
  configureConvPool(wasm.getThreadsCount(), tfjsHeapOf(tf.findBackend('wasm')));
  return { name: 'wasm', requested, tfjsNode: false, gpu: false, threads: wasm.getThreadsCount() };
}

async function initCpu(requested: BackendPreference): Promise<BackendInfo> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) throw new Error('The tfjs cpu backend failed to initialise');
  await tf.ready();
  return { name: 'cpu', requested, tfjsNode: false, gpu: false, threads: 1 };
}
