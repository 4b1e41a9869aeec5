import * as tfl from '@tensorflow/tfjs-layers';
import { type BuildContext, inputFor, LayerFactory, type Sym } from './common.js';

const BN_EPSILON = 1.001e-5;

/** Bottleneck residual block (ResNet v1): 1x1 → 3x3 → 1x1 (×4) with an identity or projection shortcut. */
function bottleneck(
  f: LayerFactory,
  x: Sym,
  filters: number,
  prefix: string,
  opts: { stride: number; project: boolean },
): Sym {
  let shortcut = x;
  if (opts.project) {
    shortcut = f.conv(x, 4 * filters, 1, { strides: opts.stride, name: `${prefix}_0_conv` });
    shortcut = f.bn(shortcut, `${prefix}_0_bn`, { epsilon: BN_EPSILON });
  }
  let y = f.conv(x, filters, 1, { strides: opts.stride, name: `${prefix}_1_conv` });
  y = f.bn(y, `${prefix}_1_bn`, { epsilon: BN_EPSILON });
  y = f.relu(y, `${prefix}_1_relu`);
  y = f.conv(y, filters, 3, { padding: 'same', name: `${prefix}_2_conv` });
  y = f.bn(y, `${prefix}_2_bn`, { epsilon: BN_EPSILON });
  y = f.relu(y, `${prefix}_2_relu`);
  y = f.conv(y, 4 * filters, 1, { name: `${prefix}_3_conv` });
  y = f.bn(y, `${prefix}_3_bn`, { epsilon: BN_EPSILON });
  y = f.add([shortcut, y], `${prefix}_add`);
  return f.relu(y, `${prefix}_out`);
}

/** Stages conv2..conv5 of ResNet50: [filters, blocks, first stride]. */
const RESNET50_STAGES: [number, number, number][] = [
  [64, 3, 1],
  [128, 4, 2],
  [256, 6, 2],
  [512, 3, 2],
];

/** keras.applications ResNet50 (v1) with include_top=False: output `conv5_block3_out`. */
export function buildResnet50(ctx: BuildContext): tfl.LayersModel {
  const f = new LayerFactory(ctx.seed);
  const input = inputFor(ctx);
  let x = f.zeroPad(
    input,
    [
      [3, 3],
      [3, 3],
    ],
    'conv1_pad',
  );
  x = f.conv(x, 64, 7, { strides: 2, name: 'conv1_conv' });
  x = f.bn(x, 'conv1_bn', { epsilon: BN_EPSILON });
  x = f.relu(x, 'conv1_relu');
  x = f.zeroPad(
    x,
    [
      [1, 1],
      [1, 1],
    ],
    'pool1_pad',
  );
  x = f.maxPool(x, 3, 2, 'pool1_pool');
  RESNET50_STAGES.forEach(([filters, blocks, stride], s) => {
    const stage = `conv${s + 2}`;
    for (let b = 1; b <= blocks; b++) {
      x = bottleneck(f, x, filters, `${stage}_block${b}`, { stride: b === 1 ? stride : 1, project: b === 1 });
    }
  });
  return tfl.model({ inputs: input, outputs: x, name: 'resnet50' });
}
