import { gemPool } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { POOLING_NAMES, type PoolingName } from '../config.js';

type GlobalMode = Exclude<PoolingName, 'flatten'>;

interface GlobalPoolArgs {
  mode: GlobalMode;
  /** Initial GeM exponent (learnable). */
  p?: number;
  name?: string;
}

/**
 * Global pooling over H×W for NHWC feature maps, one layer for every mode (timm's SelectAdaptivePool2d):
 * `avg` (GAP), `max` (GMP), `avgmax` (their mean), `catavgmax` (their concatenation: 2× channels),
 * `gem` (generalised mean (mean x^p)^(1/p) with a learnable p; Radenović et al.).
 * Registered for serialisation, so models that use it save and load.
 */
export class GlobalPool2D extends tfl.layers.Layer {
  static className = 'HeadbenchGlobalPool2D';
  readonly mode: GlobalMode;
  private readonly initialP: number;
  private p?: tfl.LayerVariable;

  constructor(args: GlobalPoolArgs) {
    super({ name: args.name });
    if (!(POOLING_NAMES as readonly string[]).includes(args.mode) || (args.mode as string) === 'flatten') {
      throw new Error(
        `GlobalPool2D: unknown mode '${args.mode}' (valid: ${POOLING_NAMES.filter((m) => m !== 'flatten').join(', ')})`,
      );
    }
    this.mode = args.mode;
    this.initialP = args.p ?? 3;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    if (this.mode === 'gem') {
      this.p = this.addWeight(
        'p',
        [1],
        'float32',
        tfl.initializers.constant({ value: this.initialP }),
        undefined,
        true,
      );
    }
    super.build(inputShape);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tfl.Shape;
    if (s.length !== 4)
      throw new Error(`GlobalPool2D expects NHWC feature maps (rank 4), got shape [${s.join(', ')}]`);
    const c = s[3];
    return [s[0], c == null ? null : c * poolingFeatureMultiplier(this.mode)];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      switch (this.mode) {
        case 'avg':
          return tf.mean(x, [1, 2]);
        case 'max':
          return tf.max(x, [1, 2]);
        case 'avgmax':
          return tf.mul(tf.add(tf.mean(x, [1, 2]), tf.max(x, [1, 2])), 0.5);
        case 'catavgmax':
          return tf.concat([tf.mean(x, [1, 2]), tf.max(x, [1, 2])], 1);
        case 'gem': {
          // One pass forward and backward on wasm; tfjs-core's pow ops elsewhere.
          return gemPool(x, this.p!.read());
        }
      }
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), mode: this.mode, p: this.initialP };
  }
}
tf.serialization.registerClass(GlobalPool2D);

/** Output features per input channel: 2 for `catavgmax`, H·W for `flatten`, else 1. */
export function poolingFeatureMultiplier(mode: PoolingName, spatial = 1): number {
  return mode === 'catavgmax' ? 2 : mode === 'flatten' ? spatial : 1;
}

/** The pooling selector: one layer for any of `flatten | avg | max | avgmax | catavgmax | gem`. */
export function poolingLayer(mode: PoolingName, name = 'pool'): tfl.layers.Layer {
  if (mode === 'flatten') return tfl.layers.flatten({ name });
  return new GlobalPool2D({ mode, name });
}
