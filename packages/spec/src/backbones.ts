// Per-backbone facts, one record per model (like timm's per-model default config): what input the
// architecture accepts, how its weights expect pixels, how many blocks `trainable: N` counts from.
import type { BackboneName, PreprocessMode } from './names.ts';

/** Width multipliers with ImageNet weights in keras.applications.MobileNetV2 (the builder takes exactly these). */
export const MOBILENETV2_ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] as const;

export interface BackboneFacts {
  description: string;
  /** Input normalisation the backbone's (ImageNet) weights expect: Keras `preprocess_input` mode. */
  preprocess: PreprocessMode;
  /** Smallest input side (pixels) the architecture accepts (Keras `obtain_input_shape` min_size). */
  minSize: number;
  /** Input side of the reference (ImageNet) model. */
  defaultSize: number;
  /** Blocks counted by `trainable: N` (the last N train), from input to output. */
  blocks: number;
  /** Width multipliers the backbone takes (`alpha`); absent: the backbone has none. */
  alphas?: readonly number[];
}

export const BACKBONES: Record<BackboneName, BackboneFacts> = {
  vgg16: {
    description: 'VGG16 (Simonyan & Zisserman 2014), 13 conv layers in 5 blocks, 14.7M parameters',
    preprocess: 'caffe',
    minSize: 32,
    defaultSize: 224,
    blocks: 5,
  },
  vgg19: {
    description: 'VGG19 (Simonyan & Zisserman 2014), 16 conv layers in 5 blocks, 20.0M parameters',
    preprocess: 'caffe',
    minSize: 32,
    defaultSize: 224,
    blocks: 5,
  },
  inceptionv3: {
    description: 'Inception v3 (Szegedy et al. 2015), stem + 11 mixed blocks, 21.8M parameters',
    preprocess: 'tf',
    minSize: 75,
    defaultSize: 299,
    blocks: 12,
  },
  resnet50: {
    description: 'ResNet50 v1 (He et al. 2015), 16 bottleneck blocks in 4 stages, 23.6M parameters',
    preprocess: 'caffe',
    minSize: 32,
    defaultSize: 224,
    blocks: 5,
  },
  mobilenetv2: {
    description:
      'MobileNetV2 (Sandler et al. 2018), 17 inverted residual blocks, width multiplier alpha ' +
      `${MOBILENETV2_ALPHAS.join('/')}, 2.3M parameters at alpha 1.0`,
    preprocess: 'tf',
    minSize: 32,
    defaultSize: 224,
    blocks: 19,
    alphas: MOBILENETV2_ALPHAS,
  },
  smallcnn: {
    description:
      'Small CPU net: 4 blocks of conv3x3-BN-ReLU-maxpool2x2 (32/64/128/128 filters), 0.24M parameters',
    preprocess: 'tf',
    minSize: 16,
    defaultSize: 32,
    blocks: 4,
  },
  nin: {
    description:
      'Network in Network (Lin et al. 2013), CPU-sized: 3 mlpconv blocks (64/128/192 filters), 0.42M parameters',
    preprocess: 'tf',
    minSize: 8,
    defaultSize: 32,
    blocks: 3,
  },
};
