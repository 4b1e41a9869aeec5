import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { EpochMetrics } from '../results.js';

/** What a checkpoint holds besides tensors: enough to continue a run exactly where it stopped. */
export interface CheckpointState {
  /** Hash of the run config the checkpoint belongs to (a different config never resumes from it). */
  configHash: string;
  /** Last completed epoch (1-based). */
  epoch: number;
  /** Optimizer iterations done (drives the Keras-style decay). */
  step: number;
  history: EpochMetrics[];
  /** Best monitored value, the epoch validation selected (its weights are kept), epochs since it improved. */
  best: { value: number; epoch: number; wait: number };
  /** sha256 of the backbone weights as loaded: a replaced weights file never resumes an old checkpoint. */
  weightsHash?: string;
  /** Seconds of training before this checkpoint (wall time continues across resumes). */
  elapsed: number;
  /** Names of the model and optimizer tensors, in the order stored. */
  modelWeights: number;
  optimizerWeights: number;
  /** Tensors of the selected epoch's weights stored (0 when the selected epoch is this checkpoint's epoch). */
  selectedWeights?: number;
}

/**
 * Adam's running β₁ᵗ and β₂ᵗ. tfjs's getWeights leaves them out and setWeights rebuilds them as pow(β, t + 1),
 * which differs in the last bits from the product the straight run kept: stored apart, so a resumed run
 * goes on bit for bit.
 */
type BiasPowers = { accBeta1: tf.Variable; accBeta2: tf.Variable };
const biasPowers = (o: tf.Optimizer): BiasPowers | undefined => {
  const a = o as unknown as Partial<BiasPowers>;
  return a.accBeta1 instanceof tf.Variable && a.accBeta2 instanceof tf.Variable
    ? (a as BiasPowers)
    : undefined;
};

const STATE = 'state.json';
const TENSORS = 'tensors.bin';
const SPECS = 'specs.json';

/**
 * Write model weights (trainable and not, e.g. BatchNorm statistics) and optimizer slots into `dir`,
 * atomically: a sibling temp folder is renamed over the old checkpoint, so a kill mid-write keeps the old one.
 */
export async function saveCheckpoint(
  dir: string,
  state: Omit<CheckpointState, 'modelWeights' | 'optimizerWeights' | 'selectedWeights'>,
  modelWeights: tf.Tensor[],
  optimizer: tf.Optimizer,
  selectedWeights: tf.Tensor[] = [],
): Promise<void> {
  const optWeights = await optimizer.getWeights();
  const named: Array<{ name: string; tensor: tf.Tensor }> = [
    ...modelWeights.map((tensor, i) => ({ name: `model/${i}`, tensor })),
    ...selectedWeights.map((tensor, i) => ({ name: `selected/${i}`, tensor })),
    ...optWeights.map((w, i) => ({ name: `opt/${i}/${w.name}`, tensor: w.tensor })),
  ];
  const powers = biasPowers(optimizer);
  if (powers)
    named.push(
      { name: 'bias/accBeta1', tensor: powers.accBeta1 },
      { name: 'bias/accBeta2', tensor: powers.accBeta2 },
    );
  const { data, specs } = await tf.io.encodeWeights(named);
  // getWeights() returns the live slot variables plus a fresh 'iter' scalar, which is ours to free.
  for (const w of optWeights) if (w.name === 'iter') w.tensor.dispose();
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await writeFile(join(tmp, TENSORS), Buffer.from(data));
  await writeFile(join(tmp, SPECS), JSON.stringify(specs));
  const full: CheckpointState = {
    ...state,
    modelWeights: modelWeights.length,
    optimizerWeights: optWeights.length,
    selectedWeights: selectedWeights.length,
  };
  await writeFile(join(tmp, STATE), JSON.stringify(full));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
}

export async function readCheckpointState(dir: string): Promise<CheckpointState | undefined> {
  const raw = await readFile(join(dir, STATE), 'utf8').catch(() => undefined);
  return raw ? (JSON.parse(raw) as CheckpointState) : undefined;
}

/**
 * Restore model weights (positionally, the build order is deterministic) and the optimizer's slots. Returns the
 * state and the selected epoch's weights when stored apart (the caller owns those tensors).
 */
export async function loadCheckpoint(
  dir: string,
  modelVariables: Array<{ write(v: tf.Tensor): void; shape: Array<number | null> }>,
  optimizer: tf.Optimizer,
): Promise<CheckpointState & { selected?: tf.Tensor[] }> {
  const state = await readCheckpointState(dir);
  if (!state) throw new Error(`no checkpoint in ${dir}`);
  const specs = JSON.parse(await readFile(join(dir, SPECS), 'utf8')) as tf.io.WeightsManifestEntry[];
  const bytes = await readFile(join(dir, TENSORS));
  const tensors = tf.io.decodeWeights(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    specs,
  );
  if (state.modelWeights !== modelVariables.length) {
    throw new Error(
      `checkpoint ${dir} has ${state.modelWeights} model weights, the model has ${modelVariables.length}`,
    );
  }
  modelVariables.forEach((v, i) => {
    const t = tensors[`model/${i}`];
    if (t.shape.join('x') !== v.shape.join('x')) {
      throw new Error(
        `checkpoint ${dir}: weight ${i} has shape [${t.shape}], the model expects [${v.shape}]`,
      );
    }
    v.write(t);
  });
  const opt = specs
    .filter((s) => s.name.startsWith('opt/'))
    .map((s) => ({ name: s.name.split('/').slice(2).join('/'), tensor: tensors[s.name] }));
  if (opt.length) await optimizer.setWeights(opt);
  // Older checkpoints have no powers: then tfjs's pow(β, t + 1) stands.
  const powers = biasPowers(optimizer);
  if (powers && tensors['bias/accBeta1'] && tensors['bias/accBeta2']) {
    powers.accBeta1.assign(tensors['bias/accBeta1']);
    powers.accBeta2.assign(tensors['bias/accBeta2']);
  }
  const count = state.selectedWeights ?? 0;
  const selected = count > 0 ? Array.from({ length: count }, (_, i) => tensors[`selected/${i}`]) : undefined;
  for (const [name, t] of Object.entries(tensors)) if (!name.startsWith('selected/')) t.dispose();
  return { ...state, selected };
}
