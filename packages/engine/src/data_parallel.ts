import os from 'node:os';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * Opt-in data-parallel training on the CPU: N worker threads, each with its own single-threaded wasm
 * instance and a replica of the model, each computing the gradients of one slice of the batch; the
 * gradients are averaged (weighted by slice size, so a step equals one full-batch step on the mean loss)
 * and every replica applies the same average with its own copy of the optimizer, so the replicas stay
 * identical without weights being exchanged.
 *
 * Why, next to the threaded wasm backend: tfjs-wasm threads only XNNPACK's ops (convolutions, matmuls);
 * the rest of a training step (BatchNorm arithmetic, reductions, the JS kernels, the optimizer) runs on
 * one core. Replicas run all of it in parallel.
 *
 * Differences from one-process training: BatchNorm batch statistics come from each replica's slice (as
 * PyTorch DDP without SyncBN); moving means/variances are averaged over replicas by getWeights(); dropout
 * masks are drawn per replica. Loss: categorical cross-entropy on the model's (softmax) output.
 */
export interface DataParallelOptions {
  /** Replicas (worker threads); default every core. */
  workers?: number;
  optimizer?: { name: 'adam' | 'sgd'; learningRate: number };
  /**
   * Modules each replica imports before rebuilding the model from its JSON: custom layers register
   * themselves on import (headbench's backbones need '@headbench/core').
   */
  imports?: string[];
}

export interface DataParallelTrainer {
  readonly workers: number;
  /** One optimizer step on the batch (x, one-hot y); resolves to the batch's mean loss. */
  step(x: tf.Tensor, y: tf.Tensor): Promise<number>;
  /** The model's weights in `model.weights` order after all steps so far (BN moving stats averaged). */
  getWeights(): Promise<Float32Array[]>;
  /** Copies getWeights() into the model the trainer was created from. */
  syncToModel(): Promise<void>;
  dispose(): Promise<void>;
}

export type ReplicaRequest =
  | {
      type: 'init';
      imports: string[];
      modelJson: string;
      weights: Float32Array[];
      optimizer: { name: 'adam' | 'sgd'; learningRate: number };
    }
  | {
      type: 'step';
      applyFirst: Float32Array[] | null;
      x: Float32Array;
      xShape: number[];
      y: Float32Array;
      yShape: number[];
    }
  | { type: 'weights'; applyFirst: Float32Array[] | null };

export type ReplicaReply =
  | { type: 'ready'; threads: number }
  | { type: 'grads'; loss: number; grads: Float32Array[] }
  | { type: 'weights'; weights: Float32Array[] };

class Replica {
  private pending: { resolve: (r: ReplicaReply) => void; reject: (e: Error) => void } | null = null;
  constructor(private readonly worker: Worker) {
    worker.on('message', (msg: ReplicaReply | { type: 'error'; message: string }) => {
      const p = this.pending;
      this.pending = null;
      if (p === null) return;
      if (msg.type === 'error') p.reject(new Error(`data-parallel replica failed: ${msg.message}`));
      else p.resolve(msg);
    });
    worker.on('error', (err) => {
      this.pending?.reject(err);
      this.pending = null;
    });
  }
  call(msg: ReplicaRequest): Promise<ReplicaReply> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage(msg);
    });
  }
  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

export async function createDataParallelTrainer(
  model: tfl.LayersModel,
  options: DataParallelOptions = {},
): Promise<DataParallelTrainer> {
  const n = options.workers ?? os.availableParallelism();
  if (!Number.isInteger(n) || n < 1) throw new Error(`workers must be a positive integer (got ${n})`);
  const optimizer = options.optimizer ?? { name: 'adam', learningRate: 1e-3 };
  const modelJson = JSON.stringify(model.toJSON(null, false));
  const weights = model.weights.map((w) => w.read().dataSync() as Float32Array);
  const trainableIdx = model.weights.map((w) => w.trainable);
  const replicas: Replica[] = [];
  for (let i = 0; i < n; i++) {
    const worker = new Worker(new URL('./data_parallel_worker.mjs', import.meta.url), {
      env: { ...process.env, HEADBENCH_WASM_THREADS: '1' },
    });
    worker.unref();
    replicas.push(new Replica(worker));
  }
  await Promise.all(
    replicas.map((r) =>
      r.call({ type: 'init', imports: options.imports ?? [], modelJson, weights, optimizer }),
    ),
  );

  let pendingGrads: Float32Array[] | null = null;
  let busy: Promise<unknown> = Promise.resolve();
  // One operation at a time: a step needs the previous step's averaged gradients.
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const run = busy.then(f);
    busy = run.catch(() => undefined);
    return run;
  };

  const step = (x: tf.Tensor, y: tf.Tensor): Promise<number> =>
    serial(async () => {
      const batch = x.shape[0];
      if (y.shape[0] !== batch) throw new Error('x and y batch sizes differ');
      const used = replicas.slice(0, Math.min(n, batch));
      const xs = x.dataSync() as Float32Array;
      const ys = y.dataSync() as Float32Array;
      const xRow = xs.length / batch;
      const yRow = ys.length / batch;
      const sizes = used.map(
        (_, i) => Math.floor((batch * (i + 1)) / used.length) - Math.floor((batch * i) / used.length),
      );
      let start = 0;
      const apply = pendingGrads;
      const replies = await Promise.all(
        replicas.map((r, i) => {
          if (i >= used.length) {
            // Not needed for this (tiny) batch, but it must apply the update to stay in sync.
            return apply === null ? null : r.call({ type: 'weights', applyFirst: apply });
          }
          const s = start;
          start += sizes[i];
          return r.call({
            type: 'step',
            applyFirst: apply,
            x: xs.slice(s * xRow, (s + sizes[i]) * xRow),
            xShape: [sizes[i], ...x.shape.slice(1)],
            y: ys.slice(s * yRow, (s + sizes[i]) * yRow),
            yShape: [sizes[i], ...y.shape.slice(1)],
          });
        }),
      );
      let loss = 0;
      let avg: Float32Array[] | null = null;
      replies.forEach((reply, i) => {
        if (reply === null || reply.type !== 'grads') return;
        const w = sizes[i] / batch;
        loss += reply.loss * w;
        if (avg === null) avg = reply.grads.map((g) => new Float32Array(g.length));
        reply.grads.forEach((g, j) => {
          const a = (avg as Float32Array[])[j];
          for (let k = 0; k < g.length; k++) a[k] += g[k] * w;
        });
      });
      pendingGrads = avg;
      return loss;
    });

  const getWeights = (): Promise<Float32Array[]> =>
    serial(async () => {
      const apply = pendingGrads;
      pendingGrads = null;
      const all = await Promise.all(replicas.map((r) => r.call({ type: 'weights', applyFirst: apply })));
      const lists = all.map((r) => (r as Extract<ReplicaReply, { type: 'weights' }>).weights);
      return lists[0].map((w0, j) => {
        if (trainableIdx[j]) return w0;
        // Non-trainable (BatchNorm moving statistics): mean over replicas.
        const out = new Float32Array(w0.length);
        for (const l of lists) for (let k = 0; k < out.length; k++) out[k] += l[j][k] / lists.length;
        return out;
      });
    });

  return {
    workers: n,
    step,
    getWeights,
    async syncToModel() {
      const w = await getWeights();
      const tensors = model.weights.map((v, i) => tf.tensor(w[i], v.shape as number[]));
      model.setWeights(tensors);
      tf.dispose(tensors);
    },
    async dispose() {
      await serial(async () => {
        await Promise.all(replicas.map((r) => r.terminate()));
      });
    },
  };
}
