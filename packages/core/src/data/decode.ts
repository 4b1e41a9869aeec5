import sharp from 'sharp';
import type { ImageSize } from './types.js';

export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'lanczos3';

// sharp decodes lazily on pipelines; caching off keeps memory flat across 100k-file datasets.
sharp.cache(false);

/**
 * Decode an encoded image (JPEG/PNG/WebP/GIF...) into RGB HWC float32 [0, 255] at `size`.
 * Alpha is dropped (flattened on black, like PIL's convert('RGB')); grayscale is expanded to 3 channels.
 * Throws on corrupt or truncated data (sharp's failOn 'warning').
 */
export async function decodeImage(
  input: Buffer | string,
  size: ImageSize,
  kernel: ResizeKernel = 'linear',
): Promise<Float32Array> {
  const { data, info } = await sharp(input, { failOn: 'warning', animated: false })
    .resize(size.width, size.height, { fit: 'fill', kernel: kernelName(kernel) })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return toRgbFloat(data, info.channels, size);
}

/** Resize a raw single- or multi-channel uint8 image (IDX digits) to RGB float. */
export async function resizeRaw(
  pixels: Uint8Array,
  from: ImageSize & { channels: 1 | 3 },
  size: ImageSize,
  kernel: ResizeKernel = 'linear',
): Promise<Float32Array> {
  if (from.height === size.height && from.width === size.width) {
    return toRgbFloat(pixels, from.channels, size);
  }
  const { data, info } = await sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), {
    raw: { width: from.width, height: from.height, channels: from.channels },
  })
    .resize(size.width, size.height, { fit: 'fill', kernel: kernelName(kernel) })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return toRgbFloat(data, info.channels, size);
}

function kernelName(kernel: ResizeKernel): keyof sharp.KernelEnum {
  return kernel === 'linear' ? 'linear' : kernel;
}

function toRgbFloat(data: Uint8Array, channels: number, size: ImageSize): Float32Array {
  const n = size.height * size.width;
  const out = new Float32Array(n * 3);
  if (channels === 3) {
    for (let i = 0; i < n * 3; i++) out[i] = data[i];
  } else if (channels === 1 || channels === 2) {
    for (let i = 0; i < n; i++) {
      const v = data[i * channels];
      out[i * 3] = v;
      out[i * 3 + 1] = v;
      out[i * 3 + 2] = v;
    }
  } else {
    for (let i = 0; i < n; i++) {
      out[i * 3] = data[i * channels];
      out[i * 3 + 1] = data[i * channels + 1];
      out[i * 3 + 2] = data[i * channels + 2];
    }
  }
  return out;
}

/** Cheap header check used while scanning a tree: rejects non-images and empty files without decoding. */
export async function probeImage(input: Buffer): Promise<string | undefined> {
  if (input.length === 0) return 'empty file (0 bytes)';
  try {
    const meta = await sharp(input).metadata();
    if (!meta.format || !['jpeg', 'png', 'webp', 'gif'].includes(meta.format)) {
      return `unsupported image format '${meta.format ?? 'unknown'}' (expected JPEG, PNG, WebP or GIF)`;
    }
    if (!meta.width || !meta.height) return 'image has no dimensions';
    return undefined;
  } catch (err) {
    return `not a readable image: ${(err as Error).message}`;
  }
}
