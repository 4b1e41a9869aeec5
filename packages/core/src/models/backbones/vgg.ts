import * as tfl from '@tensorflow/tfjs-layers';
import { type BuildContext, inputFor, LayerFactory } from './common.js';

/** Convolutions per block: VGG16 (configuration D) and VGG19 (configuration E). */
const VGG_LAYOUT = {
  vgg16: [2, 2, 3, 3, 3],
  vgg19: [2, 2, 4, 4, 4],
} as const;
const VGG_FILTERS = [64, 128, 256, 512, 512];

/** keras.applications VGG16 / VGG19 with include_top=False: output `block5_pool`. */
export function buildVgg(name: 'vgg16' | 'vgg19', ctx: BuildContext): tfl.LayersModel {
  const f = new LayerFactory(ctx.seed);
  const input = inputFor(ctx);
  let x = input;
  VGG_LAYOUT[name].forEach((convs, b) => {
    const block = `block${b + 1}`;
    for (let c = 1; c <= convs; c++) {
      x = f.conv(x, VGG_FILTERS[b], 3, { name: `${block}_conv${c}`, padding: 'same', activation: 'relu' });
    }
    x = f.maxPool(x, 2, 2, `${block}_pool`);
  });
  return tfl.model({ inputs: input, outputs: x, name });
}
