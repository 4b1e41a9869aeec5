// Named experiments: `headbench compare --preset <name>` fills the sweep fields below; flags given on the
// command line win. The reference is Keras transfer learning with global average pooling vs fully-connected
// heads (RMSprop lr 1e-4, decay 1e-6, batch 32, 50 epochs, 7:1 split, three seeds).
import type { SweepSpecInput } from './sweep.ts';

export interface Preset {
  description: string;
  /** Sweep spec fields the preset sets. */
  fields: Partial<SweepSpecInput>;
}

const KERAS_PROTOCOL = {
  heads: ['fc', 'gap', 'gmp', 'nin'],
  optimizers: ['rmsprop'],
  lr: 1e-4,
  decay: 1e-6,
  batchSize: 32,
  epochs: 50,
  split: '7:1',
  seeds: [0, 1, 2],
  trainable: 'all',
} satisfies Partial<SweepSpecInput>;

export const PRESETS = {
  'keras-gap-vs-fc': {
    description:
      'the reference experiment: pretrained InceptionV3 (npm:nsfwjs/inception_v3) at 299 px, heads fc/gap/gmp/nin, ' +
      'RMSprop lr 1e-4 decay 1e-6, batch 32, 50 epochs, 7:1 split, 3 seeds, fine-tuning every layer',
    fields: {
      backbones: ['inceptionv3'],
      weights: ['npm:nsfwjs/inception_v3'],
      size: 299,
      ...KERAS_PROTOCOL,
    },
  },
  'keras-gap-vs-fc-mobilenet': {
    description: 'the same protocol on pretrained MobileNetV2 (npm:nsfwjs/mobilenet_v2) at 224 px',
    fields: {
      backbones: ['mobilenetv2'],
      weights: ['npm:nsfwjs/mobilenet_v2'],
      size: 224,
      ...KERAS_PROTOCOL,
    },
  },
} as const satisfies Record<string, Preset>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];
