import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type BackendInfo, initBackend } from '@headbench/engine';
import { dequantizeWeights, packagedWeightsDir, readPackagedFolder } from '@headbench/weights';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { type BackendName, type RunConfig, resolvedSplitSeed } from '../config.js';
import { type Affine, drawAffine, isAugmenting } from '../data/augment.js';
import type { Batch } from '../data/loader.js';
import { ImageLoader } from '../data/loader.js';
import { openDataset } from '../data/open.js';
import type { PreprocessMode } from '../data/preprocess.js';
import { splitDataset, splitHash } from '../data/split.js';
import type { ImageDataset, ImageSize, Split } from '../data/types.js';
import { HeadbenchInputError } from '../errors.js';
import { BACKBONES, buildBackbone, setTrainable } from '../models/backbones/index.js';
import { buildHead, countWeights } from '../models/heads.js';
import { loadWeightsByName, modelExists } from '../models/io.js';
import type { BatchMetrics, EpochMetrics, ParamCounts, SplitRecord, WeightsProvenance } from '../results.js';
import { Rng } from '../rng.js';
import { loadCheckpoint, readCheckpointState } from './checkpoint.js';
import { FeatureStore, featureKeyHash } from './features.js';
import { makeOptimizer } from './optimizer.js';
import { runConfigHash, weightsContentHash } from './provenance.js';
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
  /**
   * Turn `run:<id>` into a model path, and `npm:<package>/<model>` into a packaged model folder (trainers:
   * the one the API served). The CLI and the trainer provide it; without it `npm:` reads the installed package.
   */
  resolveWeights?: (ref: string) => Promise<string>;
  /**
   * Load the backbone weights from this local folder instead of what `config.weights` names: the caller
   * (a trainer) fetched and checked them itself, so nothing here reads a path or URL from the config.
   */
  weightsPath?: string;
  /** Use the frozen-backbone feature cache when the backbone is frozen (default true). */
  featureCache?: boolean;
  /** Checkpoint every k epochs (default 1). */
  checkpointEvery?: number;
  /** Continue from this run's checkpoint if there is one (default true). */
  resume?: boolean;
  onBatch?: (m: BatchMetrics) => void;
  onEpoch?: (m: EpochMetrics, checkpointDir: string | undefined) => void | Promise<void>;
  onLog?: (message: string) => void;
  /**
   * The run entered a phase without batches ("validation after epoch 2", "checkpoint after epoch 2",
   * "finishing"): progress watchdogs allow such phases their own time.
   */
  onPhase?: (phase: string) => void;
  /** Observer of every image the run decodes, by dataset index (what a run reads, and when). */
  onImageRead?: (index: number) => void;
  /** Abort between batches (cancel). */
  signal?: AbortSignal;
  /** Checked after each epoch: stop cleanly (graceful shutdown) once the checkpoint is written. */
  stopAfterEpoch?: () => boolean;
}

/** Where validation's choice stands: best monitored value (lower is better), its epoch, epochs since. */
export interface Selection {
  value: number;
  epoch: number;
  wait: number;
}

/** Batches as tensors: backbone features when the run trains on the feature cache, else images. */
export interface BatchSource {
  views: number;
  batch(indices: number[], view: number): Promise<{ x: tf.Tensor4D; y: Int32Array; indices: number[] }>;
  close(): Promise<void>;
}

/** Everything a run holds between its phases: prepare → epochs → finish. */
export interface RunContext {
  options: TrainRunOptions;
  config: RunConfig;
  log: (message: string) => void;
  backend: BackendInfo;
  started: Date;
  dataset: ImageDataset;
  split: Split;
  splitRecord: SplitRecord;
  size: ImageSize;
  preprocess: PreprocessMode;
  loader: ImageLoader;
  classes: number;
  backbone: tfl.LayersModel;
  head: tfl.LayersModel;
  featureShape: [number, number, number];
  params: ParamCounts;
  frozen: boolean;
  /** A frozen backbone's features come from the on-disk cache: batches hold features, not images. */
  cached: boolean;
  weights: WeightsProvenance;
  train: BatchSource;
  val: BatchSource;
  /** Seconds spent computing cached features (cached runs only). */
  featureSeconds?: number;
  optimizer: tf.Optimizer;
  trainVars: tf.Variable[];
  stateVars: tfl.LayerVariable[];
  checkpointDir: string;
  configHash: string;
  /** Resumable training state. */
  history: EpochMetrics[];
  step: number;
  startEpoch: number;
  elapsed: number;
  selection: Selection;
  /** Weights at the selected epoch (kept in memory; stored in the checkpoint when they differ from the last). */
  selectedWeights?: tf.Tensor[];
}

/** Feature views cached per image when augmenting with a frozen backbone. */
const AUGMENT_VIEWS = 8;

/** Data, split, models, weights, optimizer and (when resuming) the checkpoint's state: ready for epoch one. */
export async function prepareRun(options: TrainRunOptions): Promise<RunContext> {
  const config = validateRunConfig(options.config);
  const started = new Date();
  const log = options.onLog ?? (() => {});
  const backend = await initBackend(options.backend ?? 'auto');
  const home = options.home ?? '.headbench';
  await mkdir(options.runDir, { recursive: true });

  const opened = await openDataset(config.dataset, {
    cacheDir: join(home, 'datasets'),
    classes: config.classes,
  });
  const dataset = options.onImageRead ? observeReads(opened, options.onImageRead) : opened;
  const splitSeed = resolvedSplitSeed(config);
  const split = splitDataset(dataset, {
    ratio: config.split,
    valFraction: config.valFraction,
    seed: splitSeed,
  });
  if (split.val.length === 0 || split.test.length === 0 || split.train.length === 0)
    throw new Error(
      `split: ${split.train.length} train / ${split.val.length} val / ${split.test.length} test images — every set needs at least one`,
    );
  const splitRecord: SplitRecord = {
    ratio: config.split ?? '7:1',
    ...(config.valFraction !== undefined ? { valFraction: config.valFraction } : {}),
    seed: splitSeed,
    hash: splitHash(split),
    train: split.train.length,
    val: split.val.length,
    test: split.test.length,
  };
  const size: ImageSize = { height: config.size, width: config.size };
  const info = BACKBONES[config.backbone];
  const loader = new ImageLoader(dataset, size);
  const classes = dataset.classes.length;

  const backbone = buildBackbone(config.backbone, {
    inputShape: [config.size, config.size, 3],
    alpha: config.alpha,
    seed: config.seed,
  });
  let packaged: WeightsProvenance['package'];
  if (config.weights.startsWith('npm:')) {
    // Trainers pass the folder the API served (weightsPath); the CLI reads the installed package.
    const dir =
      options.weightsPath ??
      (options.resolveWeights
        ? await options.resolveWeights(config.weights)
        : await packagedWeightsDir(config.weights, home));
    const folder = await readPackagedFolder(dir, config.weights);
    if (!folder) throw new HeadbenchInputError(`${config.weights}: no packaged model at ${dir}`, dir);
    const { info } = folder;
    const { loaded } = await loadWeightsByName(
      backbone,
      {
        label: `${config.weights} (${info.name}@${info.version})`,
        weights: dequantizeWeights(folder.weightSpecs, folder.data),
      },
      { skipMissing: false },
    );
    packaged = { name: info.name, version: info.version, model: info.model, sha256: info.sha256 };
    log(
      `loaded ${loaded.length} layers of weights from ${config.weights} (${info.name}@${info.version}, sha256 ${info.sha256.slice(0, 12)})`,
    );
  } else if (config.weights !== 'none') {
    const source = await runModelOrPath(
      options.weightsPath ??
        (config.weights.startsWith('run:') ? await requireResolver(options, config.weights) : config.weights),
    );
    const { loaded } = await loadWeightsByName(backbone, source, { skipMissing: false });
    log(`loaded ${loaded.length} layers of weights from ${config.weights}`);
  }
  const weights: WeightsProvenance = {
    source: config.weights,
    contentHash: await weightsContentHash(backbone),
    ...(packaged ? { package: packaged } : {}),
  };
  setTrainable(backbone, config.backbone, config.trainable);
  const featureShape = backbone.outputs[0].shape.slice(1) as [number, number, number];
  const head = buildHead(featureShape, config.head, classes, {
    hidden: config.hidden,
    dropout: config.dropout,
    seed: config.seed,
  });
  const frozen = config.trainable === 'frozen';
  const cached = frozen && options.featureCache !== false;

  const ctx = {
    options,
    config,
    log,
    backend,
    started,
    dataset,
    split,
    splitRecord,
    size,
    preprocess: info.preprocess,
    loader,
    classes,
    backbone,
    head,
    featureShape,
    params: countParams(backbone, head),
    frozen,
    cached,
    weights,
    checkpointDir: join(options.runDir, 'checkpoint'),
    configHash: runConfigHash(config),
    history: [] as EpochMetrics[],
    step: 0,
    startEpoch: 1,
    elapsed: 0,
    selection: { value: Number.NaN, epoch: 0, wait: 0 },
  } as Omit<RunContext, 'train' | 'val' | 'optimizer' | 'trainVars' | 'stateVars'> as RunContext;

  const augment = isAugmenting(config.augment) ? config.augment : undefined;
  const trainViews = augment ? (cached ? AUGMENT_VIEWS : config.epochs) : 1;
  const affine = (index: number, view: number): Affine | undefined =>
    augment ? drawAffine(augment, size, new Rng(`augment:${config.seed}:${index}:${view}`)) : undefined;
  const t0 = performance.now();
  ctx.train = await batchSource(ctx, 'train', split.train, trainViews, augment, (chunk, view) =>
    loader.batch(chunk, { preprocess: info.preprocess, affine: (ix) => affine(ix, view) }),
  );
  ctx.val = await batchSource(ctx, 'val', split.val, 1, undefined, (chunk) =>
    loader.batch(chunk, { preprocess: info.preprocess }),
  );
  if (cached) ctx.featureSeconds = (performance.now() - t0) / 1000;

  ctx.optimizer = makeOptimizer(config);
  ctx.trainVars = [
    ...(cached ? [] : backbone.trainableWeights.map((w) => w.read() as tf.Variable)),
    ...head.trainableWeights.map((w) => w.read() as tf.Variable),
  ];
  ctx.stateVars = [...backbone.weights, ...head.weights];
  if (options.resume !== false) await resume(ctx);
  return ctx;
}

async function resume(ctx: RunContext): Promise<void> {
  const state = await readCheckpointState(ctx.checkpointDir);
  if (!state) return;
  if (
    state.configHash !== ctx.configHash ||
    (state.weightsHash && state.weightsHash !== ctx.weights.contentHash)
  ) {
    ctx.log(`checkpoint in ${ctx.checkpointDir} belongs to another config or other weights; starting over`);
    return;
  }
  const restored = await loadCheckpoint(ctx.checkpointDir, ctx.stateVars, ctx.optimizer);
  ctx.history = restored.history;
  ctx.step = restored.step;
  ctx.selection = restored.best;
  ctx.elapsed = restored.elapsed;
  ctx.startEpoch = restored.epoch + 1;
  // The selected epoch's weights: stored apart, or the checkpoint's own when it is the selected epoch.
  ctx.selectedWeights =
    restored.selected ??
    (restored.best.epoch === restored.epoch
      ? ctx.stateVars.map((v) => tf.keep(v.read().clone()))
      : undefined);
  ctx.log(`resumed from epoch ${restored.epoch}`);
}

/**
 * One set's batches. With the feature cache, the backbone runs once per image and view into a store keyed by
 * what changes the features (the weights by content hash); else images go through the backbone each time.
 */
export async function batchSource(
  ctx: RunContext,
  name: string,
  indices: number[],
  views: number,
  viewSpec: unknown,
  images: (chunk: number[], view: number) => Promise<Batch>,
): Promise<BatchSource> {
  if (!ctx.cached) {
    return {
      views,
      async batch(chunk, view) {
        const b = await images(chunk, view);
        return { x: tf.tensor4d(b.x, b.shape), y: b.y, indices: b.indices };
      },
      close: async () => {},
    };
  }
  const { config } = ctx;
  const key = featureKeyHash({
    datasetHash: ctx.dataset.contentHash,
    backbone: config.backbone,
    alpha: config.alpha,
    weights: ctx.weights.contentHash,
    size: config.size,
    preprocess: ctx.preprocess,
    augment: viewSpec,
    views,
    indices,
  });
  const store = await FeatureStore.build(
    join(ctx.options.home ?? '.headbench', 'cache', 'features', key),
    ctx.backbone,
    indices,
    {
      views,
      batch: images,
      onProgress: (d, t) => d === t && ctx.log(`features: ${t} ${name} views`),
    },
  );
  return {
    views,
    async batch(chunk, view) {
      const { x, indices: kept } = await store.batch(chunk, view);
      return {
        x: tf.tensor4d(x, [kept.length, ...store.shape]),
        y: Int32Array.from(kept.map((i) => ctx.dataset.labels[i])),
        indices: kept,
      };
    },
    close: () => store.close(),
  };
}

/** The dataset with every decode reported to `onRead` (by index). */
function observeReads(ds: ImageDataset, onRead: (index: number) => void): ImageDataset {
  return Object.assign(Object.create(ds) as ImageDataset, {
    read: (index: number, size: ImageSize) => {
      onRead(index);
      return ds.read(index, size);
    },
  });
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

export function countParams(backbone: tfl.LayersModel, head: tfl.LayersModel): ParamCounts {
  const bb = backbone.countParams();
  const hd = head.countParams();
  const trainable = countWeights(backbone.trainableWeights) + countWeights(head.trainableWeights);
  return { backbone: bb, head: hd, total: bb + hd, trainable, frozen: bb + hd - trainable };
}
