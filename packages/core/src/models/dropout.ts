import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { hashString } from '../rng.js';

/**
 * The training step the next dropout masks belong to. The training loop sets it before every step, so a
 * mask depends only on (layer seed, step): a run resumed at epoch k draws exactly the masks an uninterrupted
 * run draws. (tfjs's own Dropout is either unseeded, hence unrepeatable, or seeded with one fixed mask.)
 */
let currentStep = 0;
export function setDropoutStep(step: number): void {
  currentStep = step;
}

interface StepDropoutArgs {
  rate: number;
  seed?: number;
  name?: string;
}

/** Inverted dropout whose mask is a pure function of (seed, layer name, training step). */
export class StepDropout extends tfl.layers.Layer {
  static className = 'HeadbenchStepDropout';
  readonly rate: number;
  readonly seed: number;

  constructor(args: StepDropoutArgs) {
    super({ name: args.name });
    if (!(args.rate >= 0 && args.rate < 1))
      throw new Error(`dropout rate must be in [0, 1), got ${args.rate}`);
    this.rate = args.rate;
    this.seed = args.seed ?? 0;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (!kwargs.training || this.rate === 0) return tf.clone(x);
    return tf.tidy(() => {
      const seed = hashString(`${this.seed}:${this.name}:${currentStep}`);
      const keep = tf.cast(
        tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', seed), this.rate),
        'float32',
      );
      return tf.mul(x, tf.mul(keep, 1 / (1 - this.rate)));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate, seed: this.seed };
  }
}
tf.serialization.registerClass(StepDropout);
