// headbench's InceptionV3 / MobileNetV2 with the nsfwjs package's weights loaded by name give the same feature
// maps as the package's own model, loaded by tfjs's loadLayersModel from the same JSON and shard bytes.
import { initBackend } from '@headbench/engine';
import { dequantizeWeights, readPackagedModel } from '@headbench/weights';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { drawFlower, FLOWER_CLASSES } from '../src/data/flowers.js';
import { preprocessInPlace } from '../src/data/preprocess.js';
import { buildBackbone } from '../src/models/backbones/index.js';
import { loadWeightsByName } from '../src/models/io.js';
import { Rng } from '../src/rng.js';

beforeAll(async () => {
  await initBackend('wasm');
});

/** Two generated flowers of different classes, preprocessed as the backbone expects ('tf': [-1, 1]). */
function flowers(size: number): tf.Tensor4D {
  const images = [0, 9].map((c) => drawFlower(FLOWER_CLASSES[c], size, new Rng(`parity:${c}`)));
  const pixels = new Float32Array(images.length * size * size * 3);
  images.forEach((img, i) => {
    pixels.set(img, i * img.length);
  });
  return tf.tensor4d(preprocessInPlace(pixels, 'tf'), [images.length, size, size, 3]);
}

/** max |ours − theirs| / max |theirs|: the error relative to the feature map's scale. */
function maxRelativeError(ours: Float32Array, theirs: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < theirs.length; i++) {
    diff = Math.max(diff, Math.abs(ours[i] - theirs[i]));
    scale = Math.max(scale, Math.abs(theirs[i]));
  }
  return diff / scale;
}

const cases = [
  { ref: 'npm:nsfwjs/mobilenet_v2', backbone: 'mobilenetv2', size: 224, output: 'out_relu', layers: 104 },
  { ref: 'npm:nsfwjs/inception_v3', backbone: 'inceptionv3', size: 299, output: 'mixed10', layers: 188 },
] as const;

describe('packaged pretrained backbones match the package model', () => {
  for (const c of cases)
    it(`${c.backbone}: ${c.output} of ${c.ref} on generated flowers`, async () => {
      const pkg = await readPackagedModel(c.ref);
      const reference = await tfl.loadLayersModel(
        tf.io.fromMemory({
          modelTopology: pkg.modelTopology,
          weightSpecs: pkg.weightSpecs,
          weightData: pkg.data.slice().buffer,
        }),
      );
      const referenceFeatures = tfl.model({
        inputs: reference.inputs,
        outputs: reference.getLayer(c.output).output as tfl.SymbolicTensor,
      });
      const ours = buildBackbone(c.backbone, { inputShape: [c.size, c.size, 3] });
      const { loaded } = await loadWeightsByName(ours, {
        label: c.ref,
        weights: dequantizeWeights(pkg.weightSpecs, pkg.data),
      });
      expect(loaded).toHaveLength(c.layers);
      expect(ours.outputs[0].shape).toEqual(referenceFeatures.outputs[0].shape);

      const x = flowers(c.size);
      const a = ours.predict(x) as tf.Tensor;
      const b = referenceFeatures.predict(x) as tf.Tensor;
      const err = maxRelativeError((await a.data()) as Float32Array, (await b.data()) as Float32Array);
      console.log(`${c.backbone} ${c.output}: max relative error ${err.toExponential(2)}`);
      expect(err).toBeLessThanOrEqual(1e-4);
      // Real features, not a dead network: the maps vary between the two flowers.
      const [f0, f1] = tf.split(b, 2).map((t) => t.dataSync());
      expect(maxRelativeError(f0 as Float32Array, f1 as Float32Array)).toBeGreaterThan(0.05);
      tf.dispose([x, a, b]);
      ours.dispose();
      reference.dispose();
    });
});
