import { PREPROCESS_MODES, type PreprocessMode } from '@headbench/spec';

/** Normalisation modes (Keras `preprocess_input`) are named in @headbench/spec. */
export { PREPROCESS_MODES, type PreprocessMode } from '@headbench/spec';

const CAFFE_BGR_MEAN = [103.939, 116.779, 123.68];
const TORCH_MEAN = [0.485, 0.456, 0.406];
const TORCH_STD = [0.229, 0.224, 0.225];

/** Normalise RGB HWC pixels in [0, 255] in place (channels last; any number of images). */
export function preprocessInPlace(pixels: Float32Array, mode: PreprocessMode): Float32Array {
  const n = pixels.length;
  switch (mode) {
    case 'caffe':
      for (let i = 0; i < n; i += 3) {
        const r = pixels[i];
        pixels[i] = pixels[i + 2] - CAFFE_BGR_MEAN[0];
        pixels[i + 1] = pixels[i + 1] - CAFFE_BGR_MEAN[1];
        pixels[i + 2] = r - CAFFE_BGR_MEAN[2];
      }
      break;
    case 'tf':
      for (let i = 0; i < n; i++) pixels[i] = pixels[i] / 127.5 - 1;
      break;
    case 'torch':
      for (let i = 0; i < n; i += 3) {
        for (let c = 0; c < 3; c++) pixels[i + c] = (pixels[i + c] / 255 - TORCH_MEAN[c]) / TORCH_STD[c];
      }
      break;
    case 'none':
      break;
    default:
      throw new Error(
        `unknown preprocessing mode '${mode as string}' (valid: ${PREPROCESS_MODES.join(', ')})`,
      );
  }
  return pixels;
}

/** Undo `preprocessInPlace` (for CAM overlays and previews): returns RGB [0, 255]. */
export function deprocess(pixels: Float32Array, mode: PreprocessMode): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      const v = pixels[i + c];
      switch (mode) {
        case 'caffe':
          out[i + (2 - c)] = v + CAFFE_BGR_MEAN[c];
          break;
        case 'tf':
          out[i + c] = (v + 1) * 127.5;
          break;
        case 'torch':
          out[i + c] = (v * TORCH_STD[c] + TORCH_MEAN[c]) * 255;
          break;
        default:
          out[i + c] = v;
      }
    }
  }
  return out;
}
