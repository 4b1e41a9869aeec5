import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { convPool } from '../kernels/conv_pool.js';
import { asWasmBackend } from '../kernels/util.js';

/**
 * BatchNormalization in training mode as one fused op on the wasm backend: batch statistics and the
 * normalisation in two SIMD passes on the conv pool's threads, and a hand-derived gradient in two more
 * (wasm/training.c). tfjs-layers composes it from moments + batchNorm, which with its gradient is ~25
 * kernels over the full activation per layer, the largest cost of a small conv net's step after convs.
 * Same semantics as tfjs-layers: batch mean and biased variance normalise; the moving statistics follow
 * them with the layer's momentum. Anything else (inference, other axes, cpu/tensorflow backends) runs
 * the stock layer code.
 */

/** Layers that took the fused path (tests check which path ran). */
export const batchNormTrainingStats = { calls: 0 };
/** Below this many elements the stock composition is as fast (fixed costs of the pool). */
const MIN_ELEMENTS = 1 << 14;

interface BatchNormLayer {
  axis: number;
  epsilon: number;
  momentum: number;
  center: boolean;
  scale: boolean;
  gamma: tfl.LayerVariable;
  beta: tfl.LayerVariable;
  movingMean: tfl.LayerVariable;
  movingVariance: tfl.LayerVariable;
}
type Call = (
  this: BatchNormLayer,
  inputs: tf.Tensor | tf.Tensor[],
  kwargs: Record<string, unknown>,
) => tf.Tensor;

let patched = false;

/**
 * Installs the fused training path on tfjs-layers' BatchNormalization (idempotent). It also fixes stock
 * training of a BN layer without gamma or beta (`scale: false`, as Keras' InceptionV3 has; tfjs-layers
 * 4.22 reads the missing gamma and throws), and the same layer frozen (inference mode) while gradients
 * are recorded, on every backend.
 */
export function useFusedBatchNormTraining(): void {
  if (patched) return;
  const proto = Object.getPrototypeOf(tfl.layers.batchNormalization({})) as { call: Call };
  const stock = proto.call;
  proto.call = function (this: BatchNormLayer, inputs, kwargs) {
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const lastAxis = this.axis === -1 || this.axis === input.rank - 1;
    if (
      kwargs?.training !== true &&
      lastAxis &&
      input.rank >= 2 &&
      input.rank <= 4 &&
      !(this.scale && this.center)
    )
      return inferenceWithoutGammaOrBeta(this, input);
    if (kwargs?.training !== true || !lastAxis || input.rank < 2) return stock.call(this, inputs, kwargs);
    const fused = tf.getBackend() === 'wasm' && input.dtype === 'float32' && input.size >= MIN_ELEMENTS;
    if (!fused && this.scale && this.center) return stock.call(this, inputs, kwargs);
    return tf.tidy(() => {
      // No gamma / beta: a constant 1 / 0 in their place.
      const cols = input.shape[input.rank - 1];
      const gamma = this.scale ? this.gamma.read() : tf.ones([cols]);
      const beta = this.center ? this.beta.read() : tf.zeros([cols]);
      const { y, mean, variance } = fused
        ? batchNormTraining(input, gamma, beta, this.epsilon)
        : composedTraining(input, gamma, beta, this.epsilon);
      moveTowards(this.movingMean, mean, this.momentum);
      moveTowards(this.movingVariance, variance, this.momentum);
      return y;
    });
  };
  patched = true;
}

/**
 * Inference mode (moving statistics) for a layer without gamma or beta. Stock tfjs-layers passes no scale
 * to tf.batchNorm, whose gradient then saves the missing input and throws while gradients are recorded:
 * a frozen InceptionV3 block under a trained one (fine-tuning the last N blocks) could not train.
 */
function inferenceWithoutGammaOrBeta(layer: BatchNormLayer, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const cols = x.shape[x.rank - 1];
    return tf.batchNorm(
      x,
      layer.movingMean.read(),
      layer.movingVariance.read(),
      layer.center ? layer.beta.read() : tf.zeros([cols]),
      layer.scale ? layer.gamma.read() : tf.ones([cols]),
      layer.epsilon,
    );
  });
}

/** What stock tfjs-layers computes in training mode (batch moments, then batchNorm), from plain ops. */
function composedTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number) {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  return { y: tf.batchNorm(x, mean, variance, beta, gamma, epsilon), mean, variance };
}

/** variable ← variable − (variable − value)·(1 − momentum), as tfjs-layers updates moving statistics. */
function moveTowards(variable: tfl.LayerVariable, value: tf.Tensor, momentum: number): void {
  tf.tidy(() => {
    const old = variable.read();
    variable.write(tf.sub(old, tf.mul(tf.sub(old, value), 1 - momentum)));
  });
}

function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number) {
  const wasm = asWasmBackend(tf.backend());
  const heap = (t: tf.TensorInfo) => wasm.typedArrayFromHeap(t) as Float32Array;
  const cols = x.shape[x.rank - 1];
  const rows = x.size / cols;
  let stats: { mean: Float32Array; variance: Float32Array; invStd: Float32Array } | null = null;
  batchNormTrainingStats.calls++;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, g, b] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const out = wasm.makeOutput(xIn.shape, 'float32');
    const s = convPool().batchNormForward(heap(xIn), rows, cols, heap(g), heap(b), epsilon, heap(out));
    stats = s;
    save([xIn, g]);
    return {
      value: tf.engine().makeTensorFromTensorInfo(out),
      gradFunc: (dy, saved) => {
        const [xs, gs] = saved;
        const dyT = Array.isArray(dy) ? dy[0] : dy;
        const dx = wasm.makeOutput(xs.shape, 'float32');
        const g2 = convPool().batchNormBackward(
          heap(xs),
          heap(dyT),
          rows,
          cols,
          s.mean,
          s.invStd,
          heap(gs),
          heap(dx),
        );
        return [tf.engine().makeTensorFromTensorInfo(dx), tf.tensor1d(g2.dGamma), tf.tensor1d(g2.dBeta)];
      },
    };
  });
  const y = op(x, gamma, beta);
  const { mean, variance } = stats as unknown as { mean: Float32Array; variance: Float32Array };
  return { y, mean: tf.tensor1d(mean), variance: tf.tensor1d(variance) };
}
