import { kerasRmspropStep } from '@headbench/engine';
import * as tf from '@tensorflow/tfjs-core';

/** A named tensor as optimizers exchange them (not re-exported by tfjs-core's index). */
type NamedTensor = { name: string; tensor: tf.Tensor };

interface Slot {
  originalName: string;
  variable: tf.Variable;
}

/**
 * RMSprop as Keras computes it (Keras 2 with `decay=`, and tf.keras 2 without momentum):
 *   ms ← ρ·ms + (1 − ρ)·g²,   w ← w − lr_t · g / (√ms + ε)
 * tfjs's own RMSProp divides by √(ms + ε) instead, which makes steps far smaller when gradients are small
 * (RMS 1e-4: 0.30× Keras's step; 1e-5: 0.03×). The learning rate lr_t is set per batch by the training loop
 * (Keras's time decay). Slots serialise through getWeights/setWeights, so checkpoints resume exactly.
 */
export class KerasRMSprop extends tf.Optimizer {
  static get className(): string {
    return 'HeadbenchKerasRMSprop';
  }
  private meanSquares: Slot[] = [];

  constructor(
    public learningRate: number,
    readonly rho = 0.9,
    readonly epsilon = 1e-7,
  ) {
    super();
    if (!(learningRate >= 0)) throw new Error(`KerasRMSprop: learning rate must be ≥ 0, got ${learningRate}`);
    if (!(rho >= 0 && rho < 1)) throw new Error(`KerasRMSprop: rho must be in [0, 1), got ${rho}`);
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((v) => v.name)
      : Object.keys(variableGradients);
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name];
      this.meanSquares[i] ??= {
        originalName: `${name}/rms`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      };
      const gradient = Array.isArray(variableGradients)
        ? variableGradients[i].tensor
        : variableGradients[name];
      if (gradient == null) return;
      // One pass per weight on wasm (the engine's kernel, the same float32 arithmetic); tfjs ops elsewhere.
      kerasRmspropStep(value, gradient, this.meanSquares[i].variable, this);
    });
    this.incrementIterations();
  }

  override dispose(): void {
    tf.dispose(this.meanSquares.map((s) => s.variable));
    this.meanSquares = [];
  }

  override async getWeights(): Promise<NamedTensor[]> {
    return [
      await this.saveIterations(),
      ...this.meanSquares.map((s) => ({ name: s.originalName, tensor: s.variable })),
    ];
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const slots = await this.extractIterations(weightValues);
    tf.dispose(this.meanSquares.map((s) => s.variable));
    this.meanSquares = slots.map((v) => ({ originalName: v.name, variable: v.tensor.variable(false) }));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, rho: this.rho, epsilon: this.epsilon };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new (cls as unknown as new (lr: number, rho: number, eps: number) => T)(
      config.learningRate as number,
      config.rho as number,
      config.epsilon as number,
    );
  }
}
tf.serialization.registerClass(KerasRMSprop);
