import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** One optimizer step of softmax cross-entropy on (x, y) in training mode; returns the loss. */
export function trainStep(model: tfl.LayersModel, opt: tf.Optimizer, x: tf.Tensor, y: tf.Tensor): number {
  return tf.tidy(() => {
    const loss = opt.minimize(
      () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      true,
    );
    return loss!.dataSync()[0];
  });
}

/**
 * 4 x [conv3x3 SAME -> BN -> ReLU -> MaxPool2x2] with 32/64/128/128 filters, GAP, Dense softmax.
 * Seeded initialisers: tests that check training progress must not depend on a lucky draw.
 */
export function smallCnn(
  size: number,
  classes: number,
  filters = [32, 64, 128, 128],
  seed = 1,
): tfl.LayersModel {
  const m = tfl.sequential();
  filters.forEach((f, i) => {
    m.add(
      tfl.layers.conv2d({
        filters: f,
        kernelSize: 3,
        padding: 'same',
        useBias: false,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + i }),
        ...(i === 0 ? { inputShape: [size, size, 3] } : {}),
      }),
    );
    m.add(tfl.layers.batchNormalization());
    m.add(tfl.layers.reLU());
    m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  });
  m.add(tfl.layers.globalAveragePooling2d({}));
  m.add(
    tfl.layers.dense({
      units: classes,
      activation: 'softmax',
      kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 100 }),
    }),
  );
  return m;
}

/** Network-In-Network mlpconv block: 5x5 conv, two 1x1 convs, maxpool 3x3/2, dropout, GAP. */
export function ninNet(size: number, classes: number, width = 32): tfl.LayersModel {
  const m = tfl.sequential();
  m.add(
    tfl.layers.conv2d({
      filters: width,
      kernelSize: 5,
      padding: 'same',
      activation: 'relu',
      inputShape: [size, size, 3],
    }),
  );
  m.add(tfl.layers.conv2d({ filters: width, kernelSize: 1, activation: 'relu' }));
  m.add(tfl.layers.conv2d({ filters: width, kernelSize: 1, activation: 'relu' }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }));
  m.add(tfl.layers.dropout({ rate: 0.5, seed: 7 }));
  m.add(tfl.layers.conv2d({ filters: classes, kernelSize: 1, activation: 'relu' }));
  m.add(tfl.layers.globalAveragePooling2d({}));
  m.add(tfl.layers.softmax());
  return m;
}

/** MobileNetV2-style: stem conv s2, inverted residual blocks (expand 1x1, depthwise s2 VALID / s1 SAME). */
export function mobileNetV2ish(size: number, classes: number): tfl.LayersModel {
  const relu6 = () => tfl.layers.reLU({ maxValue: 6 });
  const input = tfl.input({ shape: [size, size, 3] });
  let x = tfl.layers
    .conv2d({ filters: 16, kernelSize: 3, strides: 2, padding: 'same', useBias: false })
    .apply(input);
  x = tfl.layers.batchNormalization().apply(x);
  x = relu6().apply(x);
  const block = (inp: tfl.SymbolicTensor, inC: number, outC: number, stride: number): tfl.SymbolicTensor => {
    let y = tfl.layers
      .conv2d({ filters: inC * 4, kernelSize: 1, useBias: false })
      .apply(inp) as tfl.SymbolicTensor;
    y = tfl.layers.batchNormalization().apply(y) as tfl.SymbolicTensor;
    y = relu6().apply(y) as tfl.SymbolicTensor;
    if (stride === 2) {
      y = tfl.layers
        .zeroPadding2d({
          padding: [
            [0, 1],
            [0, 1],
          ],
        })
        .apply(y) as tfl.SymbolicTensor;
    }
    y = tfl.layers
      .depthwiseConv2d({
        kernelSize: 3,
        strides: stride,
        padding: stride === 2 ? 'valid' : 'same',
        useBias: false,
      })
      .apply(y) as tfl.SymbolicTensor;
    y = tfl.layers.batchNormalization().apply(y) as tfl.SymbolicTensor;
    y = relu6().apply(y) as tfl.SymbolicTensor;
    y = tfl.layers.conv2d({ filters: outC, kernelSize: 1, useBias: false }).apply(y) as tfl.SymbolicTensor;
    y = tfl.layers.batchNormalization().apply(y) as tfl.SymbolicTensor;
    return stride === 1 && inC === outC ? (tfl.layers.add().apply([inp, y]) as tfl.SymbolicTensor) : y;
  };
  let s = x as tfl.SymbolicTensor;
  s = block(s, 16, 16, 1);
  s = block(s, 16, 24, 2);
  s = block(s, 24, 24, 1);
  const gap = tfl.layers.globalAveragePooling2d({}).apply(s);
  const out = tfl.layers.dense({ units: classes, activation: 'softmax' }).apply(gap) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: out });
}

/** Small conv base with the classic Flatten -> Dense(512) -> Dense head. */
export function flattenHead(size: number, classes: number): tfl.LayersModel {
  const m = tfl.sequential();
  m.add(
    tfl.layers.conv2d({
      filters: 8,
      kernelSize: 3,
      padding: 'same',
      activation: 'relu',
      inputShape: [size, size, 3],
    }),
  );
  m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 512, activation: 'relu' }));
  m.add(tfl.layers.dense({ units: classes, activation: 'softmax' }));
  return m;
}
