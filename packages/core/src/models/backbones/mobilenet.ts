import { MOBILENETV2_ALPHAS } from '@headbench/spec';
import * as tfl from '@tensorflow/tfjs-layers';
import { type BuildContext, inputFor, LayerFactory, type Sym, spatial } from './common.js';

const BN = { epsilon: 1e-3, momentum: 0.999 };

/** Round a channel count to a multiple of `divisor`, never going down by more than 10% (Keras/TF-slim). */
export function makeDivisible(v: number, divisor = 8, minValue = divisor): number {
  let n = Math.max(minValue, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}

/** Keras `correct_pad` for a 3x3 stride-2 valid conv: pad 1 per side, but 0 on top/left for an even side. */
function correctPad(x: Sym): [[number, number], [number, number]] {
  const [h, w] = spatial(x);
  return [
    [h % 2, 1],
    [w % 2, 1],
  ];
}

function invertedResBlock(
  f: LayerFactory,
  input: Sym,
  opts: { expansion: number; stride: number; alpha: number; filters: number; id: number },
): Sym {
  const inChannels = input.shape[3] as number;
  const outChannels = makeDivisible(Math.trunc(opts.filters * opts.alpha), 8);
  let x = input;
  let prefix = `block_${opts.id}_`;
  if (opts.id > 0) {
    x = f.conv(x, opts.expansion * inChannels, 1, {
      padding: 'same',
      useBias: false,
      name: `${prefix}expand`,
    });
    x = f.bn(x, `${prefix}expand_BN`, BN);
    x = f.relu6(x, `${prefix}expand_relu`);
  } else {
    prefix = 'expanded_conv_';
  }
  if (opts.stride === 2) x = f.zeroPad(x, correctPad(x), `${prefix}pad`);
  x = f.depthwise(x, {
    strides: opts.stride,
    padding: opts.stride === 1 ? 'same' : 'valid',
    name: `${prefix}depthwise`,
  });
  x = f.bn(x, `${prefix}depthwise_BN`, BN);
  x = f.relu6(x, `${prefix}depthwise_relu`);
  x = f.conv(x, outChannels, 1, { padding: 'same', useBias: false, name: `${prefix}project` });
  x = f.bn(x, `${prefix}project_BN`, BN);
  if (inChannels === outChannels && opts.stride === 1) return f.add([input, x], `${prefix}add`);
  return x;
}

/** [filters, stride, expansion] of the 17 inverted residual blocks. */
const MOBILENETV2_BLOCKS: [number, number, number][] = [
  [16, 1, 1],
  [24, 2, 6],
  [24, 1, 6],
  [32, 2, 6],
  [32, 1, 6],
  [32, 1, 6],
  [64, 2, 6],
  [64, 1, 6],
  [64, 1, 6],
  [64, 1, 6],
  [96, 1, 6],
  [96, 1, 6],
  [96, 1, 6],
  [160, 2, 6],
  [160, 1, 6],
  [160, 1, 6],
  [320, 1, 6],
];

/** keras.applications MobileNetV2 with include_top=False: output `out_relu`. */
export function buildMobilenetV2(ctx: BuildContext): tfl.LayersModel {
  const alpha = ctx.alpha;
  if (!(MOBILENETV2_ALPHAS as readonly number[]).includes(alpha)) {
    throw new Error(`mobilenetv2: alpha ${alpha} is not supported (valid: ${MOBILENETV2_ALPHAS.join(', ')})`);
  }
  const f = new LayerFactory(ctx.seed);
  const input = inputFor(ctx);
  let x = f.zeroPad(input, correctPad(input), 'Conv1_pad');
  x = f.conv(x, makeDivisible(32 * alpha, 8), 3, { strides: 2, useBias: false, name: 'Conv1' });
  x = f.bn(x, 'bn_Conv1', BN);
  x = f.relu6(x, 'Conv1_relu');
  MOBILENETV2_BLOCKS.forEach(([filters, stride, expansion], id) => {
    x = invertedResBlock(f, x, { filters, stride, expansion, alpha, id });
  });
  const lastFilters = alpha > 1.0 ? makeDivisible(1280 * alpha, 8) : 1280;
  x = f.conv(x, lastFilters, 1, { useBias: false, name: 'Conv_1' });
  x = f.bn(x, 'Conv_1_bn', BN);
  x = f.relu6(x, 'out_relu');
  return tfl.model({ inputs: input, outputs: x, name: 'mobilenetv2' });
}
