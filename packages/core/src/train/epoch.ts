import * as tf from '@tensorflow/tfjs-core';
import { setDropoutStep } from '../models/dropout.js';
import type { EpochMetrics } from '../results.js';
import { Rng } from '../rng.js';
import { crossEntropy, evaluate, forward } from './evaluate.js';
import { learningRateAt, setLearningRate } from './optimizer.js';
import type { RunContext } from './prepare.js';

export class RunStoppedError extends Error {
  constructor(
    message: string,
    readonly epoch: number,
  ) {
    super(message);
    this.name = 'RunStoppedError';
  }
}

/** One epoch over the training set (seeded order, one augmentation view), then the validation pass. */
export async function trainEpoch(ctx: RunContext, epoch: number, runStart: number): Promise<EpochMetrics> {
  const { config, options } = ctx;
  const order = new Rng(`shuffle:${config.seed}:${epoch}`).shuffle([...ctx.split.train]);
  const view = (epoch - 1) % ctx.train.views;
  let seen = 0;
  let lossSum = 0;
  let correct = 0;
  let trainSeconds = 0;
  for (let i = 0; i < order.length; i += config.batchSize) {
    if (options.signal?.aborted) throw new RunStoppedError(`run ${options.runId} canceled`, epoch);
    const { x, y } = await ctx.train.batch(order.slice(i, i + config.batchSize), view);
    const t0 = performance.now();
    const lr = learningRateAt(config, ctx.step);
    setLearningRate(ctx.optimizer, lr);
    setDropoutStep(ctx.step);
    const yHot = tf.tidy(() => tf.oneHot(tf.tensor1d(y, 'int32'), ctx.classes));
    let probs: tf.Tensor | undefined;
    const { value, grads } = tf.variableGrads(() => {
      const p = forward(ctx, x, true);
      probs = tf.keep(p);
      return crossEntropy(p, yHot);
    }, ctx.trainVars);
    ctx.optimizer.applyGradients(ctx.trainVars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
    const loss = (await value.data())[0];
    const hits = countCorrect(probs!, y);
    tf.dispose([value, probs!, yHot, x, ...Object.values(grads)]);
    const dt = (performance.now() - t0) / 1000;
    trainSeconds += dt;
    ctx.step++;
    seen += y.length;
    lossSum += loss * y.length;
    correct += hits;
    options.onBatch?.({
      step: ctx.step,
      epoch,
      loss,
      accuracy: hits / y.length,
      lr,
      images_per_s: y.length / dt,
    });
  }
  options.onPhase?.(`validation after epoch ${epoch}`);
  const val = await evaluate(ctx, ctx.val, ctx.split.val);
  return {
    epoch,
    loss: lossSum / seen,
    accuracy: correct / seen,
    val_loss: val.loss,
    val_accuracy: val.accuracy,
    lr: learningRateAt(config, ctx.step),
    images_per_s: seen / trainSeconds,
    time_s: (performance.now() - runStart) / 1000,
  };
}

function countCorrect(probs: tf.Tensor, labels: Int32Array): number {
  const pred = tf.tidy(() => tf.argMax(probs, 1));
  const p = pred.dataSync();
  pred.dispose();
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (p[i] === labels[i]) n++;
  return n;
}
