import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/**
 * An inference-only copy of a tfjs-layers model's graph with BatchNormalization folded into the
 * preceding convolution and the following ReLU / ReLU6 fused into the same kernel.
 *
 * Why: a frozen backbone only ever runs forward, and tfjs-layers executes Conv → BN → ReLU6 as three
 * or four kernels, each a full pass over the activation. On wasm the BN and activation passes cost as
 * much as MobileNetV2's convolutions; folded, they cost nothing (bench/engine/compare.bench.ts).
 * Weights are snapshotted at fuse time: re-fuse after loading new weights.
 */
export interface InferenceGraph {
  /** Same result as `model.predict(x)` (up to float rounding), with the BN statistics of fuse time. */
  predict(x: tf.Tensor): tf.Tensor | tf.Tensor[];
  /** Layers folded away: `bn` into convs, `activation` into convs. */
  readonly folded: { bn: number; activation: number };
  /** Frees the folded weights (the source model is untouched). */
  dispose(): void;
}

type Activation = 'linear' | 'relu' | 'relu6';
type Step = (inputs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
interface Planned {
  inputs: number[];
  outputs: number[];
  run: Step;
}

const CONV = new Set(['Conv2D', 'DepthwiseConv2D']);

/** The activation a layer applies, when the fused kernels support it; null otherwise. */
function activationOf(layer: tfl.layers.Layer): Activation | null {
  const cfg = layer.getConfig();
  const cls = layer.getClassName();
  if (cls === 'Activation' || CONV.has(cls)) {
    const a = cfg.activation as string;
    return a === 'linear' || a === 'relu' ? a : null;
  }
  if (cls === 'ReLU') {
    const max = cfg.maxValue as number | null | undefined;
    if (max == null) return 'relu';
    return max === 6 ? 'relu6' : null;
  }
  return null;
}

type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

/**
 * The padding a 'valid' conv consuming ZeroPadding2D `pad` can do itself, or null. Conv2D takes explicit
 * padding; the depthwise kernel only 'same', so there the pads must equal what 'same' would add for the
 * model's static input size (true of Keras' correct_pad before stride-2 blocks on even sizes).
 */
function paddingFor(pad: tfl.layers.Layer, conv: tfl.layers.Layer): 'same' | ExplicitPadding | null {
  const cls = conv.getClassName();
  const cfg = conv.getConfig();
  const pcfg = pad.getConfig();
  if (!CONV.has(cls) || cfg.padding !== 'valid' || cfg.dataFormat === 'channels_first') return null;
  // Only a conv that takes the fused path below can pad itself; any other runs as its own layer.
  if (activationOf(conv) === null) return null;
  if (pcfg.dataFormat === 'channels_first') return null;
  const [[t, b], [l, r]] = pcfg.padding as [[number, number], [number, number]];
  if (cls === 'Conv2D')
    return [
      [0, 0],
      [t, b],
      [l, r],
      [0, 0],
    ];
  const shape = pad.inboundNodes[0].inputTensors[0].shape;
  const strides = cfg.strides as [number, number];
  const k = cfg.kernelSize as [number, number];
  const d = cfg.dilationRate as [number, number];
  const same = (size: number | null, i: number): [number, number] | null => {
    if (size == null) return null;
    const out = Math.ceil(size / strides[i]);
    const total = Math.max((out - 1) * strides[i] + (k[i] - 1) * d[i] + 1 - size, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  };
  const sh = same(shape[1], 0);
  const sw = same(shape[2], 1);
  return sh && sw && sh[0] === t && sh[1] === b && sw[0] === l && sw[1] === r ? 'same' : null;
}

/**
 * Builds the fused inference graph of a functional or sequential tfjs-layers model. Layers it does not
 * fold run as themselves (`layer.apply(…, { training: false })`), so any model works; a model with
 * shared layers (one layer used at several places) is run as a whole by `model.predict`.
 */
export function fuseForInference(model: tfl.LayersModel): InferenceGraph {
  const layers = model.layers;
  if (layers.some((l) => l.inboundNodes.length !== 1)) {
    return { predict: (x) => model.predict(x), folded: { bn: 0, activation: 0 }, dispose() {} };
  }
  // Every symbolic tensor gets a slot; count consumers so a conv is folded only into its sole consumer.
  const ids = new Map<number, number>();
  const slot = (t: tfl.SymbolicTensor) => {
    let s = ids.get(t.id);
    if (s === undefined) {
      s = ids.size;
      ids.set(t.id, s);
    }
    return s;
  };
  const consumers = new Map<number, tfl.layers.Layer[]>();
  for (const l of layers)
    for (const t of l.inboundNodes[0].inputTensors) {
      const list = consumers.get(slot(t)) ?? [];
      list.push(l);
      consumers.set(slot(t), list);
    }
  const outputSlots = model.outputs.map(slot);
  const soleConsumer = (t: tfl.SymbolicTensor): tfl.layers.Layer | null => {
    const s = slot(t);
    const c = consumers.get(s);
    return c?.length === 1 && !outputSlots.includes(s) ? c[0] : null;
  };

  const owned: tf.Tensor[] = [];
  const plan: Planned[] = [];
  const skip = new Set<tfl.layers.Layer>();
  const absorbedPad = new Map<tfl.layers.Layer, { from: number; pad: 'same' | ExplicitPadding }>();
  const folded = { bn: 0, activation: 0 };
  for (const layer of layers) {
    if (skip.has(layer) || layer.getClassName() === 'InputLayer') continue;
    const node = layer.inboundNodes[0];
    let inputs = node.inputTensors.map(slot);
    const cls = layer.getClassName();
    if (cls === 'ZeroPadding2D') {
      // ZeroPadding2D → 'valid' conv (Keras' stride-2 blocks): the conv pads instead, no extra pass.
      const conv = soleConsumer(node.outputTensors[0]);
      const explicit = conv && paddingFor(layer, conv);
      if (conv && explicit) {
        absorbedPad.set(conv, { from: inputs[0], pad: explicit });
        continue;
      }
    }
    if (CONV.has(cls)) {
      let out = node.outputTensors[0];
      let act = activationOf(layer);
      const cfg = layer.getConfig();
      if (act !== null && cfg.dataFormat !== 'channels_first') {
        const [kernel, bias] = layer.getWeights() as [tf.Tensor4D, tf.Tensor1D | undefined];
        const [, , inC, outK] = kernel.shape;
        const outChannels = cls === 'Conv2D' ? outK : inC * outK;
        // Conv (linear) → BatchNormalization over channels: w' = w·s, b' = (b − mean)·s + beta.
        let bn = act === 'linear' ? soleConsumer(out) : null;
        const bnCfg = bn?.getConfig();
        if (bn?.getClassName() !== 'BatchNormalization' || !(bnCfg?.axis === -1 || bnCfg?.axis === 3))
          bn = null;
        if (bn !== null) {
          skip.add(bn);
          folded.bn++;
          out = bn.inboundNodes[0].outputTensors[0];
        }
        // … → ReLU / ReLU6 (an Activation layer or a ReLU layer) rides along in the conv kernel.
        if (act === 'linear') {
          const next = soleConsumer(out);
          const nextAct = next ? activationOf(next) : null;
          if (next && nextAct !== null && !CONV.has(next.getClassName())) {
            act = nextAct;
            skip.add(next);
            if (nextAct !== 'linear') folded.activation++;
            out = next.inboundNodes[0].outputTensors[0];
          }
        }
        const { filter, b } = tf.tidy(() => {
          let shift: tf.Tensor = bias ?? tf.zeros([outChannels]);
          if (bn === null || bnCfg === undefined) return { filter: kernel.clone(), b: shift.clone() };
          const w = bn.getWeights();
          let k = 0;
          const stat = w[w.length - 1] as tf.Tensor;
          const gamma = bnCfg.scale ? (w[k++] as tf.Tensor) : tf.onesLike(stat);
          const beta = bnCfg.center ? (w[k++] as tf.Tensor) : tf.zerosLike(stat);
          const [mean, variance] = [w[k] as tf.Tensor, w[k + 1] as tf.Tensor];
          const scale = tf.div(gamma, tf.sqrt(tf.add(variance, bnCfg.epsilon as number)));
          shift = tf.add(tf.mul(tf.sub(shift, mean), scale), beta);
          // Conv2D: [h, w, in, out]; depthwise: [h, w, in, mult] with output channel in·mult + m.
          const f =
            cls === 'Conv2D' ? tf.mul(kernel, scale) : tf.mul(kernel, tf.reshape(scale, [1, 1, inC, outK]));
          return { filter: f, b: shift };
        });
        owned.push(filter, b);
        const strides = cfg.strides as [number, number];
        const dilations = cfg.dilationRate as number | [number, number];
        const absorbed = absorbedPad.get(layer);
        if (absorbed) inputs = [absorbed.from];
        const pad = absorbed?.pad ?? (cfg.padding as 'valid' | 'same');
        const activation = act;
        const run: Step =
          cls === 'Conv2D'
            ? ([x]) =>
                tf.fused.conv2d({
                  x: x as tf.Tensor4D,
                  filter: filter as tf.Tensor4D,
                  strides,
                  pad,
                  dilations,
                  bias: b,
                  activation,
                })
            : ([x]) =>
                tf.fused.depthwiseConv2d({
                  x: x as tf.Tensor4D,
                  filter: filter as tf.Tensor4D,
                  strides,
                  // paddingFor only hands depthwise convs 'same'.
                  pad: pad as 'valid' | 'same',
                  dilations,
                  bias: b,
                  activation,
                });
        plan.push({ inputs, outputs: [slot(out)], run });
        continue;
      }
    }
    plan.push({
      inputs,
      outputs: node.outputTensors.map(slot),
      run: (xs) => layer.apply(xs.length === 1 ? xs[0] : xs, { training: false }) as tf.Tensor | tf.Tensor[],
    });
  }
  const inputSlots = model.inputs.map(slot);

  return {
    folded,
    predict(x) {
      const xs = Array.isArray(x) ? x : [x];
      if (xs.length !== inputSlots.length)
        throw new Error(`model takes ${inputSlots.length} input(s), got ${xs.length}`);
      return tf.tidy(() => {
        const values: tf.Tensor[] = [];
        inputSlots.forEach((s, i) => {
          values[s] = xs[i];
        });
        for (const p of plan) {
          const out = p.run(p.inputs.map((s) => values[s]));
          const list = Array.isArray(out) ? out : [out];
          p.outputs.forEach((s, i) => {
            values[s] = list[i];
          });
        }
        const outs = outputSlots.map((s) => values[s]);
        return outs.length === 1 ? outs[0] : outs;
      });
    },
    dispose() {
      tf.dispose(owned);
      owned.length = 0;
    },
  };
}
