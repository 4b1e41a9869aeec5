import * as tfl from '@tensorflow/tfjs-layers';
import { type BuildContext, inputFor, LayerFactory } from './common.js';

const SMALLCNN_FILTERS = [32, 64, 128, 128];

/** Four blocks of conv3x3 → BN → ReLU → maxpool2x2 (32/64/128/128 filters): output `block4_pool`. */
export function buildSmallCnn(ctx: BuildContext): tfl.LayersModel {
  const f = new LayerFactory(ctx.seed);
  const input = inputFor(ctx);
  let x = input;
  SMALLCNN_FILTERS.forEach((filters, i) => {
    const b = `block${i + 1}`;
    // No conv bias: the BN shift that follows makes it redundant.
    x = f.conv(x, filters, 3, { padding: 'same', useBias: false, name: `${b}_conv` });
    x = f.bn(x, `${b}_bn`);
    x = f.relu(x, `${b}_relu`);
    x = f.maxPool(x, 2, 2, `${b}_pool`);
  });
  return tfl.model({ inputs: input, outputs: x, name: 'smallcnn' });
}

/** Network-in-Network mlpconv blocks: [k×k conv filters, kernel, 1×1 filters, 1×1 filters]. */
export const NIN_BLOCKS: [number, number, number, number][] = [
  [64, 5, 64, 64],
  [128, 3, 128, 128],
  [192, 3, 192, 192],
];
/** Dropout between mlpconv blocks (NIN uses 0.5 with its much longer schedules). */
const NIN_DROPOUT = 0.25;

/**
 * Network in Network (Lin et al. 2013), reduced for CPU: three mlpconv blocks (k×k conv → BN → ReLU, then two
 * 1×1 convs "cccp" with ReLU), 3×3/2 max-pool + dropout between blocks. The last mlpconv's output
 * (`mlpconv3_cccp2`, ReLU fused in the conv) is the feature map the heads pool, as NIN's own global
 * average pooling does.
 */
export function buildNin(ctx: BuildContext): tfl.LayersModel {
  const f = new LayerFactory(ctx.seed);
  const input = inputFor(ctx);
  let x = input;
  NIN_BLOCKS.forEach(([filters, kernel, cccp1, cccp2], i) => {
    const b = `mlpconv${i + 1}`;
    x = f.conv(x, filters, kernel, { padding: 'same', useBias: false, name: `${b}_conv` });
    x = f.bn(x, `${b}_bn`);
    x = f.relu(x, `${b}_relu`);
    x = f.conv(x, cccp1, 1, { activation: 'relu', name: `${b}_cccp1` });
    x = f.conv(x, cccp2, 1, { activation: 'relu', name: `${b}_cccp2` });
    if (i < NIN_BLOCKS.length - 1) {
      x = f.maxPool(x, 3, 2, `${b}_pool`, 'same');
      x = f.dropout(x, NIN_DROPOUT, `${b}_dropout`);
    }
  });
  return tfl.model({ inputs: input, outputs: x, name: 'nin' });
}
