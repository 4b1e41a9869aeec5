import { BACKBONES } from '@headbench/spec';
import type * as tfl from '@tensorflow/tfjs-layers';
import { BACKBONE_NAMES, type BackboneName, type Trainable } from '../../config.js';
import type { BuildContext } from './common.js';
import { buildInceptionV3 } from './inception.js';
import { buildMobilenetV2, makeDivisible } from './mobilenet.js';
import { buildResnet50 } from './resnet.js';
import { buildNin, buildSmallCnn, NIN_BLOCKS } from './small.js';
import { buildVgg } from './vgg.js';

/** Per-backbone facts (input sizes, preprocessing, block count) live in @headbench/spec. */
export { BACKBONES, type BackboneFacts as BackboneInfo } from '@headbench/spec';
export { makeDivisible, NIN_BLOCKS };

export interface BuildBackboneOptions {
  /** [height, width, channels]. */
  inputShape: [number, number, number];
  /** MobileNetV2 width multiplier (default 1.0); ignored by the other backbones. */
  alpha?: number;
  /** Seeds every weight initialiser: two builds with the same seed have identical weights. */
  seed?: number;
}

function assertBackboneName(name: string): asserts name is BackboneName {
  if (!(BACKBONE_NAMES as readonly string[]).includes(name)) {
    throw new Error(`unknown backbone '${name}' (valid: ${BACKBONE_NAMES.join(', ')})`);
  }
}

/**
 * Build a backbone without its classifier (Keras `include_top=False`, `pooling=None`): a functional model
 * named after the backbone whose output is the last convolutional feature map [batch, h, w, channels].
 * Layer names are those of keras.applications, so converted ImageNet weights load by name.
 */
export function buildBackbone(name: BackboneName, options: BuildBackboneOptions): tfl.LayersModel {
  assertBackboneName(name);
  const shape = options.inputShape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`${name}: inputShape must be [height, width, channels] of positive integers`);
  }
  const [h, w] = shape;
  const { minSize } = BACKBONES[name];
  if (h < minSize || w < minSize) {
    throw new Error(`${name} needs inputs of at least ${minSize}x${minSize} pixels (got ${h}x${w})`);
  }
  if (options.seed !== undefined && !Number.isFinite(options.seed)) {
    throw new Error(`${name}: seed must be a finite number`);
  }
  const ctx: BuildContext = { inputShape: [...shape], alpha: options.alpha ?? 1.0, seed: options.seed };
  switch (name) {
    case 'vgg16':
    case 'vgg19':
      return buildVgg(name, ctx);
    case 'inceptionv3':
      return buildInceptionV3(ctx);
    case 'resnet50':
      return buildResnet50(ctx);
    case 'mobilenetv2':
      return buildMobilenetV2(ctx);
    case 'smallcnn':
      return buildSmallCnn(ctx);
    case 'nin':
      return buildNin(ctx);
  }
}

/** Block of a layer from its Keras name; null for layers that belong to the block around them (the input). */
function blockKey(name: BackboneName, layer: string): string | null {
  let m: RegExpMatchArray | null;
  switch (name) {
    case 'vgg16':
    case 'vgg19':
    case 'smallcnn':
      m = layer.match(/^(block\d+)_/);
      return m ? m[1] : null;
    case 'resnet50':
      if (layer.startsWith('pool1_')) return 'conv1';
      m = layer.match(/^(conv\d+)_/);
      return m ? m[1] : null;
    case 'mobilenetv2':
      if (layer.startsWith('expanded_conv_')) return 'block_0';
      m = layer.match(/^(block_\d+)_/);
      if (m) return m[1];
      if (layer.startsWith('Conv1') || layer === 'bn_Conv1') return 'Conv1';
      if (layer.startsWith('Conv_1') || layer === 'out_relu') return 'Conv_1';
      return null;
    case 'nin':
      m = layer.match(/^(mlpconv\d+)_/);
      return m ? m[1] : null;
    case 'inceptionv3':
      return null; // structural, see inceptionBlocks
  }
}

/** InceptionV3: the stem (up to the input of the first inception module), then mixed0 … mixed10. */
function inceptionBlocks(model: tfl.LayersModel): string[][] {
  const layers = model.layers;
  const firstAvg = layers.find((l) => l.getClassName() === 'AveragePooling2D');
  const stemEnd = firstAvg?.inboundNodes[0]?.inboundLayers[0]?.name;
  const blocks: string[][] = [];
  let current: string[] = [];
  for (const layer of layers) {
    current.push(layer.name);
    if (layer.name === stemEnd || /^mixed\d+$/.test(layer.name)) {
      blocks.push(current);
      current = [];
    }
  }
  if (current.length > 0) {
    if (blocks.length > 0) blocks[blocks.length - 1].push(...current);
    else blocks.push(current);
  }
  return blocks;
}

/**
 * The model's layer names grouped in blocks, from input to output: VGG block1..block5, ResNet50 conv1 and
 * the stages conv2_x..conv5_x, InceptionV3 the stem and mixed0..mixed10, MobileNetV2 Conv1, block_0
 * (expanded_conv) … block_16 and Conv_1, smallcnn block1..block4, NIN mlpconv1..mlpconv3. Layers without a
 * block of their own (the input) go with the first block.
 */
export function backboneBlocks(name: BackboneName, model: tfl.LayersModel): string[][] {
  assertBackboneName(name);
  let blocks: string[][];
  if (name === 'inceptionv3') {
    blocks = inceptionBlocks(model);
  } else {
    const groups = new Map<string, string[]>();
    const pending: string[] = [];
    let current: string[] | undefined;
    for (const layer of model.layers) {
      const key = blockKey(name, layer.name);
      if (key === null) {
        if (current) current.push(layer.name);
        else pending.push(layer.name);
        continue;
      }
      current = groups.get(key);
      if (!current) {
        current = [...pending.splice(0)];
        groups.set(key, current);
      }
      current.push(layer.name);
    }
    blocks = [...groups.values()];
  }
  const expected = BACKBONES[name].blocks;
  if (blocks.length !== expected) {
    throw new Error(
      `model '${model.name}' does not look like a ${name} backbone: found ${blocks.length} blocks, ` +
        `expected ${expected}`,
    );
  }
  return blocks;
}

const FROZEN_BN_PATCHED = Symbol('headbench.frozenBatchNorm');

/**
 * Make a BatchNormalization layer run in inference mode while it is not trainable (tf.keras ≥ 2 semantics):
 * stock tfjs keeps updating the moving mean/variance of frozen BN layers during fit().
 */
function freezeBatchNormStatistics(layer: tfl.layers.Layer): void {
  const tagged = layer as tfl.layers.Layer & { [FROZEN_BN_PATCHED]?: true };
  if (tagged[FROZEN_BN_PATCHED]) return;
  const call = layer.call.bind(layer);
  layer.call = (inputs, kwargs) => call(inputs, layer.trainable ? kwargs : { ...kwargs, training: false });
  tagged[FROZEN_BN_PATCHED] = true;
}

/**
 * Choose what fine-tunes: `'frozen'` (no layer trains), `'all'`, or N = only the last N blocks of
 * `backboneBlocks` (0 ≤ N ≤ number of blocks). Layers outside the trainable blocks, their BatchNorm layers
 * included, are frozen; frozen BatchNorm layers also stop updating their moving statistics.
 * Call it before `model.compile()` (tfjs collects the trainable weights there).
 */
export function setTrainable(model: tfl.LayersModel, name: BackboneName, trainable: Trainable): void {
  const blocks = backboneBlocks(name, model);
  let trainableLayers: Set<string>;
  if (trainable === 'frozen') {
    trainableLayers = new Set();
  } else if (trainable === 'all') {
    trainableLayers = new Set(model.layers.map((l) => l.name));
  } else if (typeof trainable === 'number' && Number.isInteger(trainable) && trainable >= 0) {
    if (trainable > blocks.length) {
      throw new Error(
        `trainable ${trainable} is out of range for ${name}: valid are 'frozen', 'all' or a number of ` +
          `blocks from 0 to ${blocks.length}`,
      );
    }
    trainableLayers = new Set(blocks.slice(blocks.length - trainable).flat());
  } else {
    throw new Error(
      `trainable ${JSON.stringify(trainable)} is invalid for ${name}: valid are 'frozen', 'all' or a number ` +
        `of blocks from 0 to ${blocks.length}`,
    );
  }
  model.trainable = trainable !== 'frozen';
  for (const layer of model.layers) {
    layer.trainable = trainableLayers.has(layer.name);
    if (layer.getClassName() === 'BatchNormalization') freezeBatchNormStatistics(layer);
  }
}
