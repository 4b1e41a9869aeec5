import * as tfl from '@tensorflow/tfjs-layers';
import { type BuildContext, inputFor, LayerFactory, type Padding, type Sym } from './common.js';

/**
 * keras.applications InceptionV3 with include_top=False: output `mixed10`.
 *
 * Keras builds the conv-BN-ReLU units without names, so a fresh tf.keras session calls them `conv2d`,
 * `conv2d_1`, ..., `batch_normalization`, ..., `activation`, ... (and the unnamed pools / concatenations the
 * same way); those are the names here, in Keras's creation order, so converted weights match by name.
 */
export function buildInceptionV3(ctx: BuildContext): tfl.LayersModel {
  const f = new LayerFactory(ctx.seed);

  /** Conv (no bias) → BN (scale=False) → ReLU, like Keras's `conv2d_bn`. */
  const cbr = (
    x: Sym,
    filters: number,
    rows: number,
    cols: number,
    strides = 1,
    padding: Padding = 'same',
  ) => {
    let y = f.conv(x, filters, [rows, cols], {
      strides,
      padding,
      useBias: false,
      name: f.autoName('conv2d'),
    });
    y = f.bn(y, f.autoName('batch_normalization'), { scale: false });
    return f.relu(y, f.autoName('activation'));
  };
  const maxPool = (x: Sym) => f.maxPool(x, 3, 2, f.autoName('max_pooling2d'));
  const avgPool = (x: Sym) => f.avgPool(x, 3, 1, f.autoName('average_pooling2d'), 'same');

  const input = inputFor(ctx);
  let x = cbr(input, 32, 3, 3, 2, 'valid');
  x = cbr(x, 32, 3, 3, 1, 'valid');
  x = cbr(x, 64, 3, 3);
  x = maxPool(x);
  x = cbr(x, 80, 1, 1, 1, 'valid');
  x = cbr(x, 192, 3, 3, 1, 'valid');
  x = maxPool(x);

  // mixed0..2: 35x35 at 299 px.
  for (const [i, poolFilters] of [32, 64, 64].entries()) {
    const b1 = cbr(x, 64, 1, 1);
    let b5 = cbr(x, 48, 1, 1);
    b5 = cbr(b5, 64, 5, 5);
    let b3 = cbr(x, 64, 1, 1);
    b3 = cbr(b3, 96, 3, 3);
    b3 = cbr(b3, 96, 3, 3);
    const bp = cbr(avgPool(x), poolFilters, 1, 1);
    x = f.concat([b1, b5, b3, bp], `mixed${i}`);
  }

  // mixed3: grid reduction to 17x17.
  {
    const b3 = cbr(x, 384, 3, 3, 2, 'valid');
    let bd = cbr(x, 64, 1, 1);
    bd = cbr(bd, 96, 3, 3);
    bd = cbr(bd, 96, 3, 3, 2, 'valid');
    const bp = maxPool(x);
    x = f.concat([b3, bd, bp], 'mixed3');
  }

  // mixed4..7: factorised 7x7 convolutions.
  for (const [i, c] of [128, 160, 160, 192].entries()) {
    const b1 = cbr(x, 192, 1, 1);
    let b7 = cbr(x, c, 1, 1);
    b7 = cbr(b7, c, 1, 7);
    b7 = cbr(b7, 192, 7, 1);
    let bd = cbr(x, c, 1, 1);
    bd = cbr(bd, c, 7, 1);
    bd = cbr(bd, c, 1, 7);
    bd = cbr(bd, c, 7, 1);
    bd = cbr(bd, 192, 1, 7);
    const bp = cbr(avgPool(x), 192, 1, 1);
    x = f.concat([b1, b7, bd, bp], `mixed${4 + i}`);
  }

  // mixed8: grid reduction to 8x8.
  {
    let b3 = cbr(x, 192, 1, 1);
    b3 = cbr(b3, 320, 3, 3, 2, 'valid');
    let b7 = cbr(x, 192, 1, 1);
    b7 = cbr(b7, 192, 1, 7);
    b7 = cbr(b7, 192, 7, 1);
    b7 = cbr(b7, 192, 3, 3, 2, 'valid');
    const bp = maxPool(x);
    x = f.concat([b3, b7, bp], 'mixed8');
  }

  // mixed9, mixed10: expanded filter banks.
  for (let i = 0; i < 2; i++) {
    const b1 = cbr(x, 320, 1, 1);
    const b3 = cbr(x, 384, 1, 1);
    const b3cat = f.concat([cbr(b3, 384, 1, 3), cbr(b3, 384, 3, 1)], `mixed9_${i}`);
    let bd = cbr(x, 448, 1, 1);
    bd = cbr(bd, 384, 3, 3);
    const bdcat = f.concat([cbr(bd, 384, 1, 3), cbr(bd, 384, 3, 1)], f.autoName('concatenate'));
    const bp = cbr(avgPool(x), 192, 1, 1);
    x = f.concat([b1, b3cat, bdcat, bp], `mixed${9 + i}`);
  }

  return tfl.model({ inputs: input, outputs: x, name: 'inceptionv3' });
}
