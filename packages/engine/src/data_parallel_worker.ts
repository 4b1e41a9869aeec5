/**
 * One replica of a data-parallel trainer (data_parallel.ts): its own single-threaded wasm instance, a
 * copy of the model and of the optimizer. Every replica applies the same averaged gradients, so their
 * weights stay identical without being sent around.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from './backend.js';
import type { ReplicaReply, ReplicaRequest } from './data_parallel.js';

if (parentPort == null) throw new Error('data_parallel_worker must run in a worker thread');
const port = parentPort;

let model: tfl.LayersModel | null = null;
let optimizer: tf.Optimizer | null = null;
let trainable: tf.Variable[] = [];

function lossOf(y: tf.Tensor, p: tf.Tensor): tf.Scalar {
  // Keras categorical cross-entropy on probabilities (the models end in softmax).
  const eps = 1e-7;
  return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.clipByValue(p, eps, 1 - eps))), -1))) as tf.Scalar;
}

function apply(grads: Float32Array[] | null): void {
  if (grads === null || optimizer === null) return;
  const named = trainable.map((v, i) => ({ name: v.name, tensor: tf.tensor(grads[i], v.shape) }));
  optimizer.applyGradients(named);
  tf.dispose(named.map((g) => g.tensor));
}

async function handle(msg: ReplicaRequest): Promise<ReplicaReply> {
  switch (msg.type) {
    case 'init': {
      await initBackend('wasm');
      for (const spec of msg.imports) await import(spec);
      const tflayers = await import('@tensorflow/tfjs-layers');
      model = await tflayers.models.modelFromJSON({ modelTopology: JSON.parse(msg.modelJson) });
      model.setWeights(model.weights.map((w, i) => tf.tensor(msg.weights[i], w.shape as number[])));
      trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
      optimizer =
        msg.optimizer.name === 'adam'
          ? tf.train.adam(msg.optimizer.learningRate)
          : tf.train.sgd(msg.optimizer.learningRate);
      return { type: 'ready', threads: (await initBackend('wasm')).threads };
    }
    case 'step': {
      if (model === null) throw new Error('replica not initialised');
      apply(msg.applyFirst);
      const m = model;
      const x = tf.tensor(msg.x, msg.xShape);
      const y = tf.tensor(msg.y, msg.yShape);
      const { value, grads } = tf.variableGrads(
        () => lossOf(y, m.apply(x, { training: true }) as tf.Tensor),
        trainable,
      );
      const out = trainable.map((v) => grads[v.name].dataSync() as Float32Array);
      const loss = value.dataSync()[0];
      tf.dispose([x, y, value, ...Object.values(grads)]);
      return { type: 'grads', loss, grads: out };
    }
    case 'weights': {
      if (model === null) throw new Error('replica not initialised');
      apply(msg.applyFirst);
      return { type: 'weights', weights: model.weights.map((w) => w.read().dataSync() as Float32Array) };
    }
  }
}

port.on('message', (msg: ReplicaRequest) => {
  handle(msg).then(
    (reply) => {
      const transfer = reply.type === 'grads' ? reply.grads : reply.type === 'weights' ? reply.weights : [];
      port.postMessage(
        reply,
        transfer.map((a) => a.buffer as ArrayBuffer),
      );
    },
    (err: Error) => port.postMessage({ type: 'error', message: String(err?.stack ?? err) }),
  );
});
