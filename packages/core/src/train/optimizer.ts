import * as tf from '@tensorflow/tfjs-core';
import type { RunConfig } from '../config.js';
import { KerasRMSprop } from './rmsprop.js';

/**
 * Optimizers with Keras semantics for the learning rate: `lr / (1 + decay · iterations)` (Keras' legacy
 * `decay` argument, used by the reference experiment: RMSprop lr 1e-4, decay 1e-6).
 */
export function makeOptimizer(config: Pick<RunConfig, 'optimizer' | 'lr' | 'momentum'>): tf.Optimizer {
  switch (config.optimizer) {
    case 'rmsprop':
      // Keras RMSprop: rho 0.9, epsilon 1e-7 outside the square root.
      return new KerasRMSprop(config.lr, 0.9, 1e-7);
    case 'rmsprop-tfjs':
      // tfjs's variant: epsilon inside the square root, lr·g/√(ms + ε).
      return tf.train.rmsprop(config.lr, 0.9, 0, 1e-7);
    case 'adam':
      return tf.train.adam(config.lr, 0.9, 0.999, 1e-7);
    case 'sgd':
      return tf.train.momentum(config.lr, config.momentum ?? 0.9);
    default:
      throw new Error(
        `unknown optimizer '${config.optimizer as string}' (valid: rmsprop, rmsprop-tfjs, adam, sgd)`,
      );
  }
}

export function learningRateAt(config: Pick<RunConfig, 'lr' | 'decay'>, iterations: number): number {
  return config.lr / (1 + (config.decay ?? 0) * iterations);
}

/** Set the learning rate used by the next `applyGradients`. */
export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  const o = optimizer as tf.Optimizer & { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}
