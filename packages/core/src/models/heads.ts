import { camFidelity } from '@headbench/spec';
import * as tfl from '@tensorflow/tfjs-layers';
import { HEAD_NAMES, HEAD_POOLING, type HeadName } from '../config.js';
import { StepDropout } from './dropout.js';
import { poolingLayer } from './pooling.js';

export interface HeadOptions {
  /** Hidden units of the `fc` head (the reference experiment: 512). */
  hidden?: number;
  /** Dropout before the classifier (and after the hidden layer of `fc`); 0 = none. */
  dropout?: number;
  /** Seed for the weight initialisers, so a head is identical wherever it is built. */
  seed?: number;
}

/**
 * A classification head over a backbone's feature map (`featureShape` = [H, W, C]):
 * - `fc`: Flatten → Dense(hidden, relu) → [Dropout] → Dense(classes, softmax)
 * - `gap | gmp | avgmax | catavgmax | gem`: pooling → [Dropout] → Dense(classes, softmax)
 * - `nin`: [Dropout] → Conv 1×1 (classes maps, `predictions`) → GAP → softmax: C·(c + 1) parameters, no Dense
 * Layer names are fixed (`pool`, `fc1`, `dropout`, `predictions`) so weights load by name.
 */
export function buildHead(
  featureShape: [number, number, number],
  head: HeadName,
  classes: number,
  options: HeadOptions = {},
): tfl.LayersModel {
  if (!(HEAD_NAMES as readonly string[]).includes(head)) {
    throw new Error(`unknown head '${head}' (valid: ${HEAD_NAMES.join(', ')})`);
  }
  if (!(Number.isInteger(classes) && classes >= 2))
    throw new Error(`a head needs at least 2 classes, got ${classes}`);
  const seed = options.seed ?? 0;
  const dropout = options.dropout ?? 0;
  const init = (k: number) => tfl.initializers.glorotUniform({ seed: seed * 7919 + k });
  const input = tfl.input({ shape: featureShape, name: 'features' });
  if (head === 'nin') return ninHead(input, classes, dropout, seed, init(2));
  let x = poolingLayer(HEAD_POOLING[head]).apply(input) as tfl.SymbolicTensor;
  if (head === 'fc') {
    const hidden = options.hidden ?? 512;
    x = tfl.layers
      .dense({ units: hidden, activation: 'relu', name: 'fc1', kernelInitializer: init(1) })
      .apply(x) as tfl.SymbolicTensor;
  }
  if (dropout > 0)
    x = new StepDropout({ rate: dropout, name: 'dropout', seed }).apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers
    .dense({ units: classes, activation: 'softmax', name: 'predictions', kernelInitializer: init(2) })
    .apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: `head_${head}` });
}

function ninHead(
  input: tfl.SymbolicTensor,
  classes: number,
  dropout: number,
  seed: number,
  kernelInitializer: ReturnType<typeof tfl.initializers.glorotUniform>,
): tfl.LayersModel {
  let x = input;
  if (dropout > 0)
    x = new StepDropout({ rate: dropout, name: 'dropout', seed }).apply(x) as tfl.SymbolicTensor;
  x = tfl.layers
    .conv2d({ filters: classes, kernelSize: 1, name: 'predictions', kernelInitializer })
    .apply(x) as tfl.SymbolicTensor;
  x = poolingLayer('avg').apply(x) as tfl.SymbolicTensor;
  const out = tfl.layers
    .activation({ activation: 'softmax', name: 'softmax' })
    .apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out, name: 'head_nin' });
}

/** Whether the head's pooling feeds the classifier directly, so class activation maps are defined. */
export function headHasCam(head: HeadName): boolean {
  return camFidelity(head) !== 'none';
}

/** Number of scalars in a list of layer weights. */
export function countWeights(weights: readonly tfl.LayerVariable[]): number {
  return weights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0);
}
