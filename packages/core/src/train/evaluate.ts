import * as tf from '@tensorflow/tfjs-core';
import type { BatchSource, RunContext } from './prepare.js';

/** What one pass over a set measured, per image in the order evaluated. */
export interface Evaluation {
  loss: number;
  accuracy: number;
  /** Dataset indices evaluated (images that decoded), with their labels and predicted classes. */
  indices: number[];
  labels: Int32Array;
  predictions: Int32Array;
}

/** Categorical cross-entropy on softmax outputs, clipped like Keras (epsilon 1e-7). */
export function crossEntropy(probs: tf.Tensor, yOneHot: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const clipped = tf.clipByValue(probs, 1e-7, 1 - 1e-7);
    return tf.neg(tf.mean(tf.sum(tf.mul(yOneHot, tf.log(clipped)), -1))) as tf.Scalar;
  });
}

/** Class probabilities: through the backbone unless the batch already holds its (cached) features. */
export function forward(ctx: RunContext, x: tf.Tensor, training: boolean): tf.Tensor {
  const feats = ctx.cached ? x : (ctx.backbone.apply(x, { training: training && !ctx.frozen }) as tf.Tensor);
  return ctx.head.apply(feats, { training }) as tf.Tensor;
}

/** Inference-mode loss, accuracy and per-image predictions of the current weights on `indices` (view `view`). */
export async function evaluate(
  ctx: RunContext,
  source: BatchSource,
  indices: readonly number[],
  view = 0,
): Promise<Evaluation> {
  let lossSum = 0;
  let correct = 0;
  const kept: number[] = [];
  const labels: number[] = [];
  const predictions: number[] = [];
  const evalBatch = Math.max(ctx.config.batchSize, 32);
  for (let i = 0; i < indices.length; i += evalBatch) {
    const { x, y, indices: chunk } = await source.batch(indices.slice(i, i + evalBatch), view);
    if (y.length === 0) {
      x.dispose();
      continue;
    }
    const probs = tf.tidy(() => forward(ctx, x, false));
    const loss = tf.tidy(() => crossEntropy(probs, tf.oneHot(tf.tensor1d(y, 'int32'), ctx.classes)));
    const argmax = tf.argMax(probs, 1);
    const pred = (await argmax.data()) as Int32Array;
    lossSum += (await loss.data())[0] * y.length;
    y.forEach((label, k) => {
      if (pred[k] === label) correct++;
      kept.push(chunk[k]);
      labels.push(label);
      predictions.push(pred[k]);
    });
    tf.dispose([x, probs, loss, argmax]);
  }
  const n = Math.max(1, kept.length);
  return {
    loss: lossSum / n,
    accuracy: correct / n,
    indices: kept,
    labels: Int32Array.from(labels),
    predictions: Int32Array.from(predictions),
  };
}

/** confusion[true][predicted] counts. */
export function confusionMatrix(e: Evaluation, classes: number): number[][] {
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  e.labels.forEach((label, k) => {
    m[label][e.predictions[k]]++;
  });
  return m;
}
