import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { camFidelity, encodeCorrectness } from '@headbench/spec';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { DEFAULT_SHIFTS } from '../config.js';
import { ImageLoader } from '../data/loader.js';
import { deprocess } from '../data/preprocess.js';
import { ShiftedCrops, shiftCanvas, shiftViews } from '../data/shift.js';
import { headHasCam } from '../models/heads.js';
import { saveModel } from '../models/io.js';
import type { RunResult, RunSummary, ShiftResult } from '../results.js';
import { Rng } from '../rng.js';
import { camOverlayPng, camWeights, classActivationMap } from './cam.js';
import { confusionMatrix, type Evaluation, evaluate } from './evaluate.js';
import { batchSource, type RunContext } from './prepare.js';
import { runProvenance } from './provenance.js';

/**
 * After the last epoch — the only place the test set is read: test accuracy at the last epoch, then with the
 * validation-selected epoch's weights restored, test accuracy, per-image correctness, shifted crops, the
 * training sample in inference mode, CAMs and the saved model (the selected weights), and the result.
 */
export async function finishRun(ctx: RunContext, runStart: number): Promise<RunResult> {
  const { config, split, options } = ctx;
  const last = ctx.history[ctx.history.length - 1];
  const plain = (chunk: number[]) => ctx.loader.batch(chunk, { preprocess: ctx.preprocess });
  const sources = [await batchSource(ctx, 'test', split.test, 1, undefined, plain)];
  const [test] = sources;
  const atLast = await evaluate(ctx, test, split.test);

  const selectedEpoch = ctx.selection.epoch;
  if (selectedEpoch !== last.epoch) {
    if (!ctx.selectedWeights)
      throw new Error(`run ${options.runId}: the weights of selected epoch ${selectedEpoch} were not kept`);
    ctx.stateVars.forEach((v, i) => {
      v.write(ctx.selectedWeights![i]);
    });
  }
  tf.dispose(ctx.selectedWeights ?? []);
  ctx.selectedWeights = undefined;
  const atSelected = selectedEpoch === last.epoch ? atLast : await evaluate(ctx, test, split.test);

  // Translation robustness: crops of one larger resize, so views differ by translation only.
  const views = shiftViews(config.shifts ?? DEFAULT_SHIFTS, ctx.size);
  const crops = new ShiftedCrops(new ImageLoader(ctx.dataset, shiftCanvas(views, ctx.size)), views, ctx.size);
  const shiftSource = await batchSource(
    ctx,
    'shifted test',
    split.test,
    views.length,
    { crops: views },
    (chunk, v) => crops.batch(chunk, v, ctx.preprocess),
  );
  sources.push(shiftSource);
  const perView: Evaluation[] = [];
  for (let v = 0; v < views.length; v++) perView.push(await evaluate(ctx, shiftSource, split.test, v));
  const shifted: ShiftResult[] = [];
  for (const fraction of [...new Set(views.map((v) => v.fraction))]) {
    const ks = views.flatMap((v, k) => (v.fraction === fraction ? [k] : []));
    const accs = ks.map((k) => perView[k].accuracy);
    const agree = ks.map((k) => sameShare(perView[k].predictions, perView[0].predictions));
    shifted.push({
      fraction,
      pixels: Math.abs(views[ks[0]].dx),
      accuracy: mean(accs),
      consistency: mean(agree),
      directions: accs,
    });
  }

  // Generalisation gap: a fixed stratified training sample, inference mode, no augmentation.
  const sample = stratifiedSample(
    split.train,
    ctx.dataset.labels,
    Math.max(split.test.length, 256),
    `train-eval:${ctx.splitRecord.seed}`,
  );
  const trainSource = await batchSource(ctx, 'train sample', sample, 1, undefined, plain);
  sources.push(trainSource);
  const trainEval = await evaluate(ctx, trainSource, sample);

  const confusion = confusionMatrix(atSelected, ctx.classes);
  const summary: RunSummary = {
    selected_epoch: selectedEpoch,
    val_accuracy: ctx.history.find((m) => m.epoch === selectedEpoch)?.val_accuracy ?? Number.NaN,
    test_accuracy: atSelected.accuracy,
    test_loss: atSelected.loss,
    test_correct: encodeCorrectness(Array.from(atSelected.labels, (l, k) => atSelected.predictions[k] === l)),
    test_count: atSelected.labels.length,
    split_hash: ctx.splitRecord.hash,
    last_epoch: last.epoch,
    test_accuracy_last: atLast.accuracy,
    test_loss_last: atLast.loss,
    train_accuracy: trainEval.accuracy,
    gap: trainEval.accuracy - atSelected.accuracy,
    confusion,
    per_class_accuracy: confusion.map(
      (row, c) =>
        row[c] /
        Math.max(
          1,
          row.reduce((a, b) => a + b, 0),
        ),
    ),
    shifted,
    cams: headHasCam(config.head) ? await writeCams(ctx) : [],
    cam_fidelity: camFidelity(config.head),
  };

  // The full model (backbone + head, selected weights) for transfer (`weights: run:<id>`) and inference.
  const full = composeModel(ctx.backbone, ctx.head);
  await saveModel(full, join(options.runDir, 'model'));
  // Disposing the composed model frees every layer: the backbone's and, through it, the head's.
  full.dispose();
  for (const s of [...sources, ctx.train, ctx.val]) await s.close();
  ctx.optimizer.dispose();
  const result: RunResult = {
    id: options.runId,
    config,
    backend: ctx.backend.name,
    dataset: {
      name: ctx.dataset.name,
      uri: config.dataset,
      contentHash: ctx.dataset.contentHash,
      classes: [...ctx.dataset.classes],
      train: split.train.length,
      val: split.val.length,
      test: split.test.length,
    },
    params: ctx.params,
    epochs: ctx.history,
    summary,
    provenance: await runProvenance({
      backend: ctx.backend,
      config,
      featureCache: ctx.cached,
      split: ctx.splitRecord,
      weights: ctx.weights,
    }),
    status: 'succeeded',
    timings: {
      started: ctx.started.toISOString(),
      finished: new Date().toISOString(),
      seconds: (performance.now() - runStart) / 1000,
      featureSeconds: ctx.featureSeconds,
    },
  };
  await writeFile(join(options.runDir, 'result.json'), JSON.stringify(result, null, 2));
  return result;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

function sameShare(a: Int32Array, b: Int32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / Math.max(1, a.length);
}

/** About `n` of `indices`, the same share of each class, drawn with a fixed seed (all of them when n ≥ their count). */
export function stratifiedSample(
  indices: readonly number[],
  labels: Int32Array,
  n: number,
  seed: string,
): number[] {
  if (n >= indices.length) return [...indices];
  const byClass = new Map<number, number[]>();
  for (const i of indices) {
    const list = byClass.get(labels[i]);
    if (list) list.push(i);
    else byClass.set(labels[i], [i]);
  }
  const rng = new Rng(seed);
  const out: number[] = [];
  for (const list of byClass.values())
    out.push(...rng.shuffle(list).slice(0, Math.max(1, Math.round((list.length * n) / indices.length))));
  return out.sort((a, b) => a - b);
}

/** CAM overlays for a seeded sample of test images (selected weights), written as PNG files. */
async function writeCams(ctx: RunContext): Promise<string[]> {
  const { config, split, options } = ctx;
  const count = Math.min(config.camSamples ?? 8, split.test.length);
  if (count === 0) return [];
  const sample = new Rng(`cam:${config.seed}`).shuffle([...split.test]).slice(0, count);
  const dir = join(options.runDir, 'cams');
  await mkdir(dir, { recursive: true });
  const { kernel, kernelShape, power } = await camWeights(ctx.head, config.head);
  const files: string[] = [];
  const b = await ctx.loader.batch(sample, { preprocess: ctx.preprocess });
  const x = tf.tensor4d(b.x, b.shape);
  const feats = ctx.backbone.predict(x) as tf.Tensor4D;
  const probs = ctx.head.predict(feats) as tf.Tensor2D;
  const featData = (await feats.data()) as Float32Array;
  const probData = (await probs.data()) as Float32Array;
  const [fh, fw, fc] = ctx.featureShape;
  const per = fh * fw * fc;
  const { height, width } = ctx.size;
  for (let k = 0; k < b.indices.length; k++) {
    const p = probData.subarray(k * ctx.classes, (k + 1) * ctx.classes);
    const pred = p.indexOf(Math.max(...p));
    const cam = classActivationMap(
      featData.subarray(k * per, (k + 1) * per),
      ctx.featureShape,
      kernel,
      kernelShape,
      pred,
      power,
    );
    const image = deprocess(
      b.x.subarray(k * height * width * 3, (k + 1) * height * width * 3),
      ctx.preprocess,
    );
    const png = await camOverlayPng(image, ctx.size, cam, { height: fh, width: fw });
    const classes = ctx.dataset.classes;
    const name = `${String(k).padStart(2, '0')}_true-${classes[b.y[k]]}_pred-${classes[pred]}_${Math.round(p[pred] * 100)}.png`;
    await writeFile(join(dir, name), png);
    files.push(relative(options.outDir ?? options.runDir, join(dir, name)));
  }
  tf.dispose([x, feats, probs]);
  return files;
}

/** Backbone and head as one model with the backbone's input. */
export function composeModel(backbone: tfl.LayersModel, head: tfl.LayersModel): tfl.LayersModel {
  const out = head.apply(backbone.outputs[0]) as tfl.SymbolicTensor;
  return tfl.model({ inputs: backbone.inputs, outputs: out, name: `${backbone.name}_${head.name}` });
}
