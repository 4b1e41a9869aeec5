import { createHash } from 'node:crypto';
import { type BackendInfo, convPool } from '@headbench/engine';
import { runConfigHash } from '@headbench/spec';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { RunConfig } from '../config.js';
import type { Provenance, SplitRecord } from '../results.js';

// The config hash is the spec's (canonical JSON, nested fields included): one rule for compare, the API and
// checkpoints.
export { runConfigHash };

/**
 * sha256 over a model's weight names, shapes and values as loaded — whatever the source (a folder, a URL, a
 * run's model, random initialisation), a different file gives a different hash, so stale caches never match.
 */
export async function weightsContentHash(model: tfl.LayersModel): Promise<string> {
  const h = createHash('sha256');
  for (const w of model.weights) {
    const t = w.read();
    const data = await t.data();
    h.update(`${w.originalName}:${t.shape.join('x')}:${t.dtype}\n`);
    h.update(new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength));
  }
  return h.digest('hex');
}

/** What, besides the config, changes a run's numbers: the machine path the arithmetic took, the data and weights. */
export async function runProvenance(args: {
  backend: BackendInfo;
  config: RunConfig;
  featureCache: boolean;
  split: SplitRecord;
  weights: Provenance['weights'];
}): Promise<Provenance> {
  const wasm = args.backend.name === 'wasm';
  return {
    backend: args.backend.name,
    threads: args.backend.threads,
    ...(wasm
      ? { simd: (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true, fma: convPool().fma }
      : {}),
    node: process.version,
    tfjs: tf.version_core,
    featureCache: args.featureCache ? 'cached' : 'off',
    split: args.split,
    weights: args.weights,
    configHash: runConfigHash(args.config),
  };
}
