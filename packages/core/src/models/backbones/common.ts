import * as tfl from '@tensorflow/tfjs-layers';
import { StepDropout } from '../dropout.js';

/** A symbolic tensor of the functional API. */
export type Sym = tfl.SymbolicTensor;
export type Padding = 'same' | 'valid';

/** What every backbone builder receives. */
export interface BuildContext {
  inputShape: [number, number, number];
  alpha: number;
  seed?: number;
}

/** Mix a base seed with a layer index into a 31-bit seed (integer hash, deterministic). */
function mixSeed(seed: number, index: number): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) & 0x7fffffff;
}

/**
 * Layer factory shared by the builders: explicit Keras-style names and, when a seed is given, a distinct
 * but deterministic seed for every initialiser (same seed ⇒ same weights, layers stay decorrelated).
 */
export class LayerFactory {
  private initCount = 0;
  private readonly autoNames = new Map<string, number>();

  constructor(readonly seed?: number) {}

  /** Keras glorot_uniform (the default kernel initialiser of Conv2D / DepthwiseConv2D / Dense). */
  kernelInit() {
    if (this.seed === undefined) return 'glorotUniform' as const;
    return tfl.initializers.glorotUniform({ seed: mixSeed(this.seed, this.initCount++) });
  }

  /** tf.keras automatic names: `conv2d`, `conv2d_1`, `conv2d_2`, ... (per model build). */
  autoName(prefix: string): string {
    const n = this.autoNames.get(prefix) ?? 0;
    this.autoNames.set(prefix, n + 1);
    return n === 0 ? prefix : `${prefix}_${n}`;
  }

  conv(
    x: Sym,
    filters: number,
    kernel: number | [number, number],
    opts: {
      name: string;
      strides?: number;
      padding?: Padding;
      useBias?: boolean;
      activation?: 'relu' | 'linear';
    },
  ): Sym {
    return tfl.layers
      .conv2d({
        filters,
        kernelSize: kernel,
        strides: opts.strides ?? 1,
        padding: opts.padding ?? 'valid',
        useBias: opts.useBias ?? true,
        activation: opts.activation ?? 'linear',
        kernelInitializer: this.kernelInit(),
        name: opts.name,
      })
      .apply(x) as Sym;
  }

  depthwise(x: Sym, opts: { name: string; strides: number; padding: Padding }): Sym {
    return tfl.layers
      .depthwiseConv2d({
        kernelSize: 3,
        strides: opts.strides,
        padding: opts.padding,
        useBias: false,
        depthwiseInitializer: this.kernelInit(),
        name: opts.name,
      })
      .apply(x) as Sym;
  }

  bn(x: Sym, name: string, opts: { epsilon?: number; momentum?: number; scale?: boolean } = {}): Sym {
    return tfl.layers
      .batchNormalization({
        axis: -1,
        epsilon: opts.epsilon ?? 1e-3,
        momentum: opts.momentum ?? 0.99,
        scale: opts.scale ?? true,
        name,
      })
      .apply(x) as Sym;
  }

  relu(x: Sym, name: string): Sym {
    return tfl.layers.activation({ activation: 'relu', name }).apply(x) as Sym;
  }

  relu6(x: Sym, name: string): Sym {
    return tfl.layers.reLU({ maxValue: 6, name }).apply(x) as Sym;
  }

  maxPool(x: Sym, pool: number, strides: number, name: string, padding: Padding = 'valid'): Sym {
    return tfl.layers.maxPooling2d({ poolSize: pool, strides, padding, name }).apply(x) as Sym;
  }

  avgPool(x: Sym, pool: number, strides: number, name: string, padding: Padding = 'valid'): Sym {
    return tfl.layers.averagePooling2d({ poolSize: pool, strides, padding, name }).apply(x) as Sym;
  }

  zeroPad(x: Sym, padding: [[number, number], [number, number]], name: string): Sym {
    return tfl.layers.zeroPadding2d({ padding, name }).apply(x) as Sym;
  }

  concat(xs: Sym[], name: string): Sym {
    return tfl.layers.concatenate({ axis: -1, name }).apply(xs) as Sym;
  }

  add(xs: Sym[], name: string): Sym {
    return tfl.layers.add({ name }).apply(xs) as Sym;
  }

  dropout(x: Sym, rate: number, name: string): Sym {
    // Masks keyed by (seed, layer, training step): repeatable and resumable, yet new at every step.
    return new StepDropout({ rate, name, seed: this.seed ?? 0 }).apply(x) as Sym;
  }
}

/** Spatial size (height, width) of a symbolic tensor; throws if unknown. */
export function spatial(x: Sym): [number, number] {
  const [, h, w] = x.shape;
  if (h == null || w == null) throw new Error(`spatial size of ${x.name} is unknown`);
  return [h, w];
}

/** The Keras input layer name of a freshly built application model. */
export const INPUT_NAME = 'input_1';

export function inputFor(ctx: BuildContext): Sym {
  return tfl.input({ shape: ctx.inputShape, name: INPUT_NAME });
}
