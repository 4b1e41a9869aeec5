// The names an experiment is written in. Each list is the one copy: the CLI's flags, the API's schemas,
// the dashboard's form and the trainers' builders all read it.

/** Backbones built layer for layer like Keras applications (include_top=False), plus two small CPU nets. */
export const BACKBONE_NAMES = [
  'vgg16',
  'vgg19',
  'inceptionv3',
  'resnet50',
  'mobilenetv2',
  'smallcnn',
  'nin',
] as const;
export type BackboneName = (typeof BACKBONE_NAMES)[number];

/** Pooling selector (timm's SelectAdaptivePool2d; Keras applications' `pooling=`). */
export const POOLING_NAMES = ['flatten', 'avg', 'max', 'avgmax', 'catavgmax', 'gem'] as const;
export type PoolingName = (typeof POOLING_NAMES)[number];

/**
 * Heads: `fc` = Flatten → Dense(hidden, relu) → Dense(classes, softmax), the reference experiment's FC head;
 * `nin` = 1×1 conv to one map per class → GAP → softmax (Network In Network's own head, no Dense);
 * the others = pooling → (dropout) → Dense(classes, softmax).
 */
export const HEAD_NAMES = ['fc', 'gap', 'gmp', 'avgmax', 'catavgmax', 'gem', 'nin'] as const;
export type HeadName = (typeof HEAD_NAMES)[number];

export const HEAD_POOLING: Record<HeadName, PoolingName> = {
  fc: 'flatten',
  gap: 'avg',
  gmp: 'max',
  avgmax: 'avgmax',
  catavgmax: 'catavgmax',
  gem: 'gem',
  nin: 'avg',
};

/** `rmsprop` is Keras's update (ε outside the square root); `rmsprop-tfjs` is tfjs's (ε inside). */
export const OPTIMIZER_NAMES = ['rmsprop', 'rmsprop-tfjs', 'adam', 'sgd'] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/** TensorFlow.js backends a run or a trainer can ask for (`auto`: tfjs-node(-gpu) when installed, else wasm). */
export const BACKEND_NAMES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/**
 * Input normalisation, as Keras applications' `preprocess_input` modes:
 * - `caffe` (VGG, ResNet50): RGB→BGR, subtract the ImageNet BGR means, no scaling;
 * - `tf` (InceptionV3, MobileNetV2): scale to [-1, 1];
 * - `torch`: scale to [0, 1], subtract the ImageNet means and divide by the stds (per RGB channel);
 * - `none`: leave [0, 255].
 */
export const PREPROCESS_MODES = ['caffe', 'tf', 'torch', 'none'] as const;
export type PreprocessMode = (typeof PREPROCESS_MODES)[number];

/** What a run's `trainable` takes besides a number of last blocks. */
export const TRAINABLE_MODES = ['frozen', 'all'] as const;
