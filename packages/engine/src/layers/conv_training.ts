import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/**
 * Conv2D layers with a linear activation (conv → BatchNorm → ReLU nets: smallcnn, NIN, MobileNetV2,
 * InceptionV3) call tfjs-core's fused conv2d, whose gradient is a `customGrad` that computes the input
 * gradient eagerly, wanted or not. The first trainable conv's input gradient is never wanted: for a net
 * trained from scratch that is the gradient with respect to the images (a conv with 3 output channels,
 * ~6% of a smallcnn step); for a backbone fine-tuned from block N, it is a full conv backward into the
 * frozen blocks. While gradients are recorded, such a layer runs plain conv2d + bias add instead: their
 * gradients are computed per input, only for inputs on a path to a trained variable, so the tape skips
 * it. Inference (nothing recorded) keeps the fused kernel.
 */

/** Layer calls that took the plain path (tests check which path ran). */
export const convTrainingStats = { calls: 0 };

interface ConvLayer {
  rank: number;
  dataFormat: string;
  padding: string;
  strides: number[];
  dilationRate: number[] | number;
  activation: { getClassName(): string };
  kernel: tfl.LayerVariable;
  bias: tfl.LayerVariable | null;
}
type Call = (this: ConvLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;

let stock: Call | null = null;
let plain: Call | null = null;

/**
 * Installs (or, with `on` false, removes: benchmarks' A/B) the per-input-gradient training path on
 * tfjs-layers' Conv2D. Idempotent; every backend.
 */
export function usePlainConvTraining(on = true): void {
  // Conv2D's prototype chain: Conv2D → Conv (which defines call) → BaseConv → Layer.
  const proto = Object.getPrototypeOf(
    Object.getPrototypeOf(tfl.layers.conv2d({ filters: 1, kernelSize: 1 })),
  ) as { call: Call };
  if (!Object.hasOwn(proto, 'call'))
    throw new Error('tfjs-layers Conv.call not found: the pinned version changed');
  if (stock === null) {
    stock = proto.call;
    plain = plainCall(stock);
  }
  proto.call = (on ? plain : stock) as Call;
}

function plainCall(stock: Call): Call {
  return function (this: ConvLayer, inputs, kwargs) {
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const recording = (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
    if (
      !recording ||
      this.rank !== 2 ||
      input.rank !== 4 ||
      this.dataFormat !== 'channelsLast' ||
      this.padding === 'causal' ||
      this.activation.getClassName() !== 'linear'
    )
      return stock.call(this, inputs, kwargs);
    convTrainingStats.calls++;
    return tf.tidy(() => {
      const dilations = this.dilationRate as [number, number] | number;
      const y = tf.conv2d(
        input as tf.Tensor4D,
        this.kernel.read() as tf.Tensor4D,
        this.strides as [number, number],
        this.padding === 'same' ? 'same' : 'valid',
        'NHWC',
        dilations,
      );
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  };
}
