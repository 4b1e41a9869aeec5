import * as tf from '@tensorflow/tfjs-core';
import type { RunResult } from '../results.js';
import { saveCheckpoint } from './checkpoint.js';
import { RunStoppedError, trainEpoch } from './epoch.js';
import { finishRun } from './finish.js';
import { prepareRun, type RunContext, type TrainRunOptions } from './prepare.js';

export { RunStoppedError } from './epoch.js';
export { crossEntropy } from './evaluate.js';
export { composeModel } from './finish.js';
export { countParams, type TrainRunOptions } from './prepare.js';

/**
 * Train one backbone × head × seed run and measure the Network-In-Network claims, in timm's phases: prepare
 * (data, three-way split, models, weights, resume), one epoch at a time (training, then validation), and
 * finish (the test set, read only now, at the validation-selected epoch and the last).
 */
export async function trainRun(options: TrainRunOptions): Promise<RunResult> {
  const ctx = await prepareRun(options);
  const { config } = ctx;
  const runStart = performance.now() - ctx.elapsed * 1000;
  let stoppedEarly = false;
  for (let epoch = ctx.startEpoch; epoch <= config.epochs && !stoppedEarly; epoch++) {
    const metrics = await trainEpoch(ctx, epoch, runStart);
    ctx.history.push(metrics);
    ctx.log(
      `epoch ${epoch}/${config.epochs} loss ${metrics.loss.toFixed(4)} acc ${metrics.accuracy.toFixed(4)} ` +
        `val_loss ${metrics.val_loss.toFixed(4)} val_acc ${metrics.val_accuracy.toFixed(4)}`,
    );
    stoppedEarly = select(ctx, epoch, metrics.val_loss, metrics.val_accuracy);
    const every = options.checkpointEvery ?? 1;
    const checkpointNow = epoch % every === 0 || epoch === config.epochs || stoppedEarly;
    if (checkpointNow) {
      options.onPhase?.(`checkpoint after epoch ${epoch}`);
      await saveCheckpoint(
        ctx.checkpointDir,
        {
          configHash: ctx.configHash,
          weightsHash: ctx.weights.contentHash,
          epoch,
          step: ctx.step,
          history: ctx.history,
          best: ctx.selection,
          elapsed: (performance.now() - runStart) / 1000,
        },
        ctx.stateVars.map((v) => v.read()),
        ctx.optimizer,
        ctx.selection.epoch === epoch ? [] : (ctx.selectedWeights ?? []),
      );
    }
    await options.onEpoch?.(metrics, checkpointNow ? ctx.checkpointDir : undefined);
    if (epoch < config.epochs && !stoppedEarly && options.stopAfterEpoch?.()) {
      throw new RunStoppedError(`run ${options.runId} stopped after epoch ${epoch}`, epoch);
    }
  }
  options.onPhase?.('finishing (test set, figures, model)');
  return finishRun(ctx, runStart);
}

/**
 * Validation's choice: the epoch with the best monitored value (val accuracy, or val loss when early stopping
 * monitors it; the first on ties) keeps its weights in memory. Returns true when early stopping says stop.
 */
function select(ctx: RunContext, epoch: number, valLoss: number, valAccuracy: number): boolean {
  const monitor = ctx.config.earlyStopping?.monitor ?? 'val_accuracy';
  const v = monitor === 'val_loss' ? valLoss : -valAccuracy;
  const s = ctx.selection;
  if (Number.isNaN(s.value) || v < s.value) {
    ctx.selection = { value: v, epoch, wait: 0 };
    tf.dispose(ctx.selectedWeights ?? []);
    ctx.selectedWeights = ctx.stateVars.map((w) => tf.keep(w.read().clone()));
    return false;
  }
  s.wait++;
  return !!ctx.config.earlyStopping && s.wait >= ctx.config.earlyStopping.patience;
}
