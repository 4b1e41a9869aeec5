import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { initBackend } from '@headbench/engine';
import { runConfigHash } from '@headbench/spec';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { type BackendName, DEFAULT_SHIFTS, type RunConfig } from '../config.js';
import { type Affine, drawAffine, isAugmenting } from '../data/augment.js';
import { ImageLoader } from '../data/loader.js';
import { openDataset } from '../data/open.js';
import { deprocess } from '../data/preprocess.js';
import { splitDataset } from '../data/split.js';
import type { ImageSize } from '../data/types.js';
import { BACKBONES, buildBackbone, setTrainable } from '../models/backbones/index.js';
import { setDropoutStep } from '../models/dropout.js';
import { buildHead, countWeights, headHasCam } from '../models/heads.js';
import { loadWeightsByName, modelExists, saveModel } from '../models/io.js';
import type {
  BatchMetrics,
  EpochMetrics,
  ParamCounts,
  RunResult,
  RunSummary,
  ShiftResult,
} from '../results.js';
import { Rng } from '../rng.js';
import { camOverlayPng, classActivationMap } from './cam.js';
import { loadCheckpoint, readCheckpointState, saveCheckpoint } from './checkpoint.js';
import { FeatureStore, featureKeyHash } from './features.js';
import { learningRateAt, makeOptimizer, setLearningRate } from './optimizer.js';
import { validateRunConfig } from './validate.js';

export interface TrainRunOptions {
  config: RunConfig;
  runId: string;
  /** Where this run keeps its checkpoint, final model and CAM images. */
  runDir: string;
  /** Folder that artifact paths in the result are relative to (the report folder); default runDir. */
  outDir?: string;
  /** State folder for generated datasets and the feature cache (default `.headbench`). */
  home?: string;
  backend?: BackendName;
  /** Turn `run:<id>` (or any reference) into a model path; the CLI and the trainer provide it. */
  resolveWeights?: (ref: string) => Promise<string>;
  /** Use the frozen-backbone feature cache when the backbone is frozen (default true). */
  featureCache?: boolean;
  /** Checkpoint every k epochs (default 1). */
  checkpointEvery?: number;
  /** Continue from this run's checkpoint if there is one (default true). */
  resume?: boolean;
  onBatch?: (m: BatchMetrics) => void;
  onEpoch?: (m: EpochMetrics, checkpointDir: string | undefined) => void | Promise<void>;
  onLog?: (message: string) => void;
  /** Abort between batches (cancel). */
  signal?: AbortSignal;
  /** Checked after each epoch: stop cleanly (graceful shutdown) once the checkpoint is written. */
  stopAfterEpoch?: () => boolean;
}

export class RunStoppedError extends Error {
  constructor(
    message: string,
    readonly epoch: number,
  ) {
    super(message);
    this.name = 'RunStoppedError';
  }
}

export { runConfigHash };

/** Feature views cached per image when augmenting with a frozen backbone. */
const AUGMENT_VIEWS = 8;

/** Train one backbone × head × seed run end to end and measure the Network-In-Network claims. */
export async function trainRun(options: TrainRunOptions): Promise<RunResult> {
  const config = validateRunConfig(options.config);
  const started = new Date();
  const log = options.onLog ?? (() => {});
  const backend = await initBackend(options.backend ?? 'auto');
  const home = options.home ?? '.headbench';
  const outDir = options.outDir ?? options.runDir;
  await mkdir(options.runDir, { recursive: true });

  const dataset = await openDataset(config.dataset, {
    cacheDir: join(home, 'datasets'),
    classes: config.classes,
  });
  // The split is fixed per dataset (seed 0), so every seed and head is tested on the same images.
  const split = splitDataset(dataset, { ratio: config.split });
  const size: ImageSize = { height: config.size, width: config.size };
  const info = BACKBONES[config.backbone];
  const loader = new ImageLoader(dataset, size);
  const classes = dataset.classes.length;

  const backbone = buildBackbone(config.backbone, {
    inputShape: [config.size, config.size, 3],
    alpha: config.alpha,
    seed: config.seed,
  });
  let weightsId = `none:${config.seed}`;
  if (config.weights !== 'none') {
    const source = await runModelOrPath(
      config.weights.startsWith('run:') ? await requireResolver(options, config.weights) : config.weights,
    );
    const { loaded } = await loadWeightsByName(backbone, source, { skipMissing: false });
    weightsId = `${config.weights}:${loaded.length}`;
    log(`loaded ${loaded.length} layers of weights from ${config.weights}`);
  }
  setTrainable(backbone, config.backbone, config.trainable);
  const featureShape = backbone.outputs[0].shape.slice(1) as [number, number, number];
  const head = buildHead(featureShape, config.head, classes, {
    hidden: config.hidden,
    dropout: config.dropout,
    seed: config.seed,
  });

  const params = countParams(backbone, head);
  const frozen = config.trainable === 'frozen';
  const cached = frozen && options.featureCache !== false;
  const augment = isAugmenting(config.augment) ? config.augment : undefined;
  const views = augment ? (cached ? AUGMENT_VIEWS : config.epochs) : 1;
  const affine = (index: number, view: number): Affine | undefined =>
    augment ? drawAffine(augment, size, new Rng(`augment:${config.seed}:${index}:${view}`)) : undefined;
  const shifts = config.shifts ?? DEFAULT_SHIFTS;
  // Test views: view 0 is the unshifted input (validation), then each non-zero shift.
  const testShifts = [0, ...shifts.filter((f) => f !== 0)];
  const shiftAffine = (view: number): Affine => ({
    flip: false,
    dx: Math.round(testShifts[view] * config.size),
    dy: 0,
    degrees: 0,
  });

  // Sources of batches: backbone features from the cache, or images through the backbone.
  let trainStore: FeatureStore | undefined;
  let testStore: FeatureStore | undefined;
  let featureSeconds: number | undefined;
  if (cached) {
    const t0 = performance.now();
    const key = (indices: number[], v: number, aug: unknown) =>
      featureKeyHash({
        datasetHash: dataset.contentHash,
        backbone: config.backbone,
        alpha: config.alpha,
        weights: weightsId,
        size: config.size,
        preprocess: info.preprocess,
        augment: aug,
        views: v,
        indices,
      });
    const cacheRoot = join(home, 'cache', 'features');
    trainStore = await FeatureStore.build(
      join(cacheRoot, key(split.train, views, augment)),
      backbone,
      loader,
      split.train,
      {
        preprocess: info.preprocess,
        views,
        affine,
        onProgress: (d, t) => d === t && log(`features: ${t} train views`),
      },
    );
    // Test features: view v = input shifted by testShifts[v].
    const testViews = testShifts.length;
    testStore = await FeatureStore.build(
      join(cacheRoot, key(split.test, testViews, { shifts: testShifts })),
      backbone,
      loader,
      split.test,
      {
        preprocess: info.preprocess,
        views: testViews,
        affine: (_i, v) => (v === 0 ? undefined : shiftAffine(v)),
      },
    );
    featureSeconds = (performance.now() - t0) / 1000;
  }

  const optimizer = makeOptimizer(config);
  const trainVars = [
    ...(cached ? [] : backbone.trainableWeights.map((w) => w.read() as tf.Variable)),
    ...head.trainableWeights.map((w) => w.read() as tf.Variable),
  ];
  const stateVars = [...backbone.weights, ...head.weights];
  const ckptDir = join(options.runDir, 'checkpoint');
  const configHash = runConfigHash(config);

  let history: EpochMetrics[] = [];
  let step = 0;
  let startEpoch = 1;
  let elapsed = 0;
  let best = { value: Number.NaN, epoch: 0, wait: 0 };
  if (options.resume !== false) {
    const state = await readCheckpointState(ckptDir);
    if (state && state.configHash === configHash) {
      const restored = await loadCheckpoint(ckptDir, stateVars, optimizer);
      ({ history, step, best, elapsed } = restored);
      startEpoch = restored.epoch + 1;
      log(`resumed from epoch ${restored.epoch}`);
    } else if (state) {
      log(`checkpoint in ${ckptDir} belongs to another config; starting over`);
    }
  }

  const forward = (x: tf.Tensor, training: boolean): tf.Tensor => {
    const feats = cached ? x : (backbone.apply(x, { training: training && !frozen }) as tf.Tensor);
    return head.apply(feats, { training }) as tf.Tensor;
  };
  const batchOf = async (indices: number[], view: number, forTest: boolean) => {
    if (cached) {
      const store = forTest ? testStore! : trainStore!;
      const { x, indices: kept } = await store.batch(indices, view);
      return {
        x: tf.tensor4d(x, [kept.length, ...store.shape]),
        y: Int32Array.from(kept.map((i) => dataset.labels[i])),
      };
    }
    const b = await loader.batch(indices, {
      preprocess: info.preprocess,
      affine: forTest ? undefined : (ix) => affine(ix, view),
    });
    return { x: tf.tensor4d(b.x, b.shape), y: b.y };
  };

  const runStart = performance.now() - elapsed * 1000;
  let stoppedEarly = false;
  for (let epoch = startEpoch; epoch <= config.epochs && !stoppedEarly; epoch++) {
    const order = new Rng(`shuffle:${config.seed}:${epoch}`).shuffle([...split.train]);
    const view = (epoch - 1) % views;
    let seen = 0;
    let lossSum = 0;
    let correct = 0;
    let trainSeconds = 0;
    for (let i = 0; i < order.length; i += config.batchSize) {
      if (options.signal?.aborted) throw new RunStoppedError(`run ${options.runId} canceled`, epoch);
      const { x, y } = await batchOf(order.slice(i, i + config.batchSize), view, false);
      const t0 = performance.now();
      const lr = learningRateAt(config, step);
      setLearningRate(optimizer, lr);
      setDropoutStep(step);
      const yHot = tf.tidy(() => tf.oneHot(tf.tensor1d(y, 'int32'), classes));
      let probs: tf.Tensor | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const p = forward(x, true);
        probs = tf.keep(p);
        return crossEntropy(p, yHot);
      }, trainVars);
      optimizer.applyGradients(trainVars.map((v) => ({ name: v.name, tensor: grads[v.name] })));
      const loss = (await value.data())[0];
      const hits = countCorrect(probs!, y);
      tf.dispose([value, probs!, yHot, x, ...Object.values(grads)]);
      const dt = (performance.now() - t0) / 1000;
      trainSeconds += dt;
      step++;
      seen += y.length;
      lossSum += loss * y.length;
      correct += hits;
      options.onBatch?.({ step, epoch, loss, accuracy: hits / y.length, lr, images_per_s: y.length / dt });
    }
    const val = await evaluate(split.test, 0);
    const metrics: EpochMetrics = {
      epoch,
      loss: lossSum / seen,
      accuracy: correct / seen,
      val_loss: val.loss,
      val_accuracy: val.accuracy,
      lr: learningRateAt(config, step),
      images_per_s: seen / trainSeconds,
      time_s: (performance.now() - runStart) / 1000,
    };
    history.push(metrics);
    log(
      `epoch ${epoch}/${config.epochs} loss ${metrics.loss.toFixed(4)} acc ${metrics.accuracy.toFixed(4)} ` +
        `val_loss ${metrics.val_loss.toFixed(4)} val_acc ${metrics.val_accuracy.toFixed(4)}`,
    );
    if (config.earlyStopping) {
      const v = config.earlyStopping.monitor === 'val_loss' ? metrics.val_loss : -metrics.val_accuracy;
      if (Number.isNaN(best.value) || v < best.value) best = { value: v, epoch, wait: 0 };
      else if (++best.wait >= config.earlyStopping.patience) stoppedEarly = true;
    }
    const every = options.checkpointEvery ?? 1;
    const checkpointNow = epoch % every === 0 || epoch === config.epochs || stoppedEarly;
    if (checkpointNow) {
      await saveCheckpoint(
        ckptDir,
        { configHash, epoch, step, history, best, elapsed: (performance.now() - runStart) / 1000 },
        stateVars.map((v) => v.read()),
        optimizer,
      );
    }
    await options.onEpoch?.(metrics, checkpointNow ? ckptDir : undefined);
    if (epoch < config.epochs && !stoppedEarly && options.stopAfterEpoch?.()) {
      throw new RunStoppedError(`run ${options.runId} stopped after epoch ${epoch}`, epoch);
    }
  }

  // Final measurements on the test split.
  const final = await evaluate(split.test, 0, true);
  const shifted: ShiftResult[] = [];
  for (const fraction of shifts) {
    const v = testShifts.indexOf(fraction);
    const r = fraction === 0 ? final : await evaluate(split.test, v, false, shiftAffine(v));
    shifted.push({ fraction, pixels: Math.round(fraction * config.size), accuracy: r.accuracy });
  }
  const cams = headHasCam(config.head) ? await writeCams() : [];
  const last = history[history.length - 1];
  const bestEpoch = history.reduce((b, m) => (m.val_accuracy > b.val_accuracy ? m : b), history[0]);
  const summary: RunSummary = {
    test_accuracy: final.accuracy,
    test_loss: final.loss,
    best_val_accuracy: bestEpoch.val_accuracy,
    best_epoch: bestEpoch.epoch,
    final_gap: last.accuracy - last.val_accuracy,
    confusion: final.confusion!,
    per_class_accuracy: final.confusion!.map(
      (row, c) =>
        row[c] /
        Math.max(
          1,
          row.reduce((a, b) => a + b, 0),
        ),
    ),
    shifted,
    cams,
  };

  // The full model (backbone + head) for transfer (`weights: run:<id>`) and inference.
  const full = composeModel(backbone, head);
  await saveModel(full, join(options.runDir, 'model'));
  // Disposing the composed model frees every layer: the backbone's and, through it, the head's.
  full.dispose();
  await trainStore?.close();
  await testStore?.close();
  const finished = new Date();
  const result: RunResult = {
    id: options.runId,
    config,
    backend: backend.name,
    dataset: {
      name: dataset.name,
      uri: config.dataset,
      contentHash: dataset.contentHash,
      classes: [...dataset.classes],
      train: split.train.length,
      test: split.test.length,
    },
    params,
    epochs: history,
    summary,
    status: 'succeeded',
    timings: {
      started: started.toISOString(),
      finished: finished.toISOString(),
      seconds: (performance.now() - runStart) / 1000,
      featureSeconds,
    },
  };
  optimizer.dispose();
  await writeFile(join(options.runDir, 'result.json'), JSON.stringify(result, null, 2));
  return result;

  /** Loss, accuracy and (optionally) the confusion matrix on `indices`, optionally shifted. */
  async function evaluate(indices: number[], view: number, withConfusion = false, shift?: Affine) {
    let lossSum = 0;
    let correct = 0;
    let n = 0;
    const confusion = withConfusion
      ? dataset.classes.map(() => new Array<number>(classes).fill(0))
      : undefined;
    const evalBatch = Math.max(config.batchSize, 32);
    for (let i = 0; i < indices.length; i += evalBatch) {
      const chunk = indices.slice(i, i + evalBatch);
      let x: tf.Tensor;
      let y: Int32Array;
      if (cached || !shift) {
        ({ x, y } = await batchOf(chunk, view, true));
      } else {
        const b = await loader.batch(chunk, { preprocess: info.preprocess, affine: () => shift });
        x = tf.tensor4d(b.x, b.shape);
        y = b.y;
      }
      const probs = tf.tidy(() => forward(x, false));
      const loss = tf.tidy(() => crossEntropy(probs, tf.oneHot(tf.tensor1d(y, 'int32'), classes)));
      const argmax = tf.argMax(probs, 1);
      const pred = (await argmax.data()) as Int32Array;
      lossSum += (await loss.data())[0] * y.length;
      y.forEach((label, k) => {
        if (pred[k] === label) correct++;
        if (confusion) confusion[label][pred[k]]++;
      });
      n += y.length;
      tf.dispose([x, probs, loss, argmax]);
    }
    return { loss: lossSum / Math.max(1, n), accuracy: correct / Math.max(1, n), confusion };
  }

  /** CAM overlays for a seeded sample of test images, written as PNG files. */
  async function writeCams(): Promise<string[]> {
    const count = Math.min(config.camSamples ?? 8, split.test.length);
    if (count === 0) return [];
    const sample = new Rng(`cam:${config.seed}`).shuffle([...split.test]).slice(0, count);
    const dir = join(options.runDir, 'cams');
    await mkdir(dir, { recursive: true });
    const dense = head.getLayer('predictions');
    const [kernelT] = dense.getWeights();
    const kernel = (await kernelT.data()) as Float32Array;
    const kernelShape = kernelT.shape as [number, number];
    const files: string[] = [];
    const b = await loader.batch(sample, { preprocess: info.preprocess });
    const x = tf.tensor4d(b.x, b.shape);
    const feats = backbone.predict(x) as tf.Tensor4D;
    const probs = head.predict(feats) as tf.Tensor2D;
    const featData = (await feats.data()) as Float32Array;
    const probData = (await probs.data()) as Float32Array;
    const per = featureShape[0] * featureShape[1] * featureShape[2];
    for (let k = 0; k < b.indices.length; k++) {
      const p = probData.subarray(k * classes, (k + 1) * classes);
      const pred = p.indexOf(Math.max(...p));
      const cam = classActivationMap(
        featData.subarray(k * per, (k + 1) * per),
        featureShape,
        kernel,
        kernelShape,
        pred,
      );
      const image = deprocess(
        b.x.subarray(k * size.height * size.width * 3, (k + 1) * size.height * size.width * 3),
        info.preprocess,
      );
      const png = await camOverlayPng(image, size, cam, { height: featureShape[0], width: featureShape[1] });
      const name = `${String(k).padStart(2, '0')}_true-${dataset.classes[b.y[k]]}_pred-${dataset.classes[pred]}_${Math.round(p[pred] * 100)}.png`;
      await writeFile(join(dir, name), png);
      files.push(relative(outDir, join(dir, name)));
    }
    tf.dispose([x, feats, probs]); // kernelT is the live variable: not ours to dispose
    return files;
  }
}

/** A run folder (`runs/<id>`, holding `model/`) stands for its final model; anything else is used as given. */
async function runModelOrPath(path: string): Promise<string> {
  if (/^https?:\/\//.test(path)) return path;
  const inner = join(path, 'model');
  return (await modelExists(inner)) ? inner : path;
}

async function requireResolver(options: TrainRunOptions, ref: string): Promise<string> {
  if (!options.resolveWeights)
    throw new Error(`weights '${ref}' need a resolver (run references are resolved by the CLI or trainer)`);
  return options.resolveWeights(ref);
}

/** Categorical cross-entropy on softmax outputs, clipped like Keras (epsilon 1e-7). */
export function crossEntropy(probs: tf.Tensor, yOneHot: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const clipped = tf.clipByValue(probs, 1e-7, 1 - 1e-7);
    return tf.neg(tf.mean(tf.sum(tf.mul(yOneHot, tf.log(clipped)), -1))) as tf.Scalar;
  });
}

function countCorrect(probs: tf.Tensor, labels: Int32Array): number {
  const pred = tf.tidy(() => tf.argMax(probs, 1));
  const p = pred.dataSync();
  pred.dispose();
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (p[i] === labels[i]) n++;
  return n;
}

export function countParams(backbone: tfl.LayersModel, head: tfl.LayersModel): ParamCounts {
  const bb = backbone.countParams();
  const hd = head.countParams();
  const trainable = countWeights(backbone.trainableWeights) + countWeights(head.trainableWeights);
  return { backbone: bb, head: hd, total: bb + hd, trainable, frozen: bb + hd - trainable };
}

/** Backbone and head as one model with the backbone's input. */
export function composeModel(backbone: tfl.LayersModel, head: tfl.LayersModel): tfl.LayersModel {
  const out = head.apply(backbone.outputs[0]) as tfl.SymbolicTensor;
  return tfl.model({ inputs: backbone.inputs, outputs: out, name: `${backbone.name}_${head.name}` });
}
