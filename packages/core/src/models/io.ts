import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { HeadbenchInputError } from '../errors.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

const HTTP_URL = /^https?:\/\//i;

/** Write a file so that readers see the old content or the new one, never a partial file. */
async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomUUID()}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Make the directory entry renames durable (best effort: not every platform can fsync a directory). */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // ignored
  }
}

const BYTES_PER_ELEMENT: Record<string, number> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

/** Bytes the weight specs describe, or null when that is not known in advance (string tensors). */
function expectedWeightBytes(specs: tf.io.WeightsManifestEntry[]): number | null {
  let total = 0;
  for (const spec of specs) {
    if (spec.dtype === 'string') return null;
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = BYTES_PER_ELEMENT[spec.quantization?.dtype ?? spec.dtype];
    if (bytes === undefined) return null;
    total += size * bytes;
  }
  return total;
}

/** `dir` may be a folder or the path of its model.json. */
function modelPaths(pathOrDir: string): { dir: string; json: string } {
  let p = pathOrDir.startsWith('file://') ? fileURLToPath(pathOrDir) : pathOrDir;
  p = resolve(p);
  if (p.toLowerCase().endsWith('.json')) return { dir: dirname(p), json: p };
  return { dir: p, json: join(p, MODEL_JSON) };
}

/**
 * The file a weightsManifest entry names, which must lie inside the model folder: a model is a folder,
 * and a manifest from someone else (an uploaded archive, a URL) must not make us read `../../secret`.
 * Symbolic links are followed before the check, so a link out of the folder is refused too.
 */
async function insideModelFolder(dir: string, rel: string, json: string): Promise<string> {
  const refuse = () =>
    new HeadbenchInputError(
      `${basename(json)}: weightsManifest path '${String(rel).slice(0, 200)}' leaves the model folder (weights files must lie inside it)`,
      json,
    );
  if (typeof rel !== 'string' || rel === '' || isAbsolute(rel) || rel.includes('\0')) throw refuse();
  const file = resolve(dir, rel);
  const within = (root: string, p: string) => {
    const r = relative(root, p);
    return r !== '' && !r.startsWith('..') && !isAbsolute(r);
  };
  if (!within(dir, file)) throw refuse();
  // A missing file is reported by the read; only an existing one can point elsewhere through a link.
  const real = await realpath(file).catch(() => null);
  if (real !== null && !within(await realpath(dir), real)) throw refuse();
  return file;
}

/**
 * A tfjs IOHandler for a local folder (tfjs without tfjs-node has no `file://` handler in Node).
 * Saves `model.json` (tfjs layers format: modelTopology + weightsManifest) and `weights.bin`, each written to
 * a temporary file and renamed into place (weights first), so an interrupted save never leaves a truncated
 * file. Loads any tfjs layers model folder, including the sharded `group1-shard*of*.bin` that
 * `tensorflowjs_converter` writes. `dir` may also be the path of the model.json itself.
 */
export function fileSystemHandler(dir: string): tf.io.IOHandler {
  const paths = modelPaths(dir);
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error(`fileSystemHandler: binary model topologies (graph models) are not supported`);
      }
      await mkdir(paths.dir, { recursive: true });
      const weightSpecs = artifacts.weightSpecs ?? [];
      const weightData =
        artifacts.weightData === undefined
          ? new ArrayBuffer(0)
          : tf.io.CompositeArrayBuffer.join(artifacts.weightData);
      const weightsName = paths.json.endsWith(MODEL_JSON)
        ? WEIGHTS_BIN
        : `${basename(paths.json, '.json')}.bin`;
      const modelJSON: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology ?? {},
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [weightsName], weights: weightSpecs }],
      };
      if (artifacts.trainingConfig != null) modelJSON.trainingConfig = artifacts.trainingConfig;
      if (artifacts.signature != null) modelJSON.signature = artifacts.signature;
      if (artifacts.userDefinedMetadata != null)
        modelJSON.userDefinedMetadata = artifacts.userDefinedMetadata;
      if (artifacts.modelInitializer != null) modelJSON.modelInitializer = artifacts.modelInitializer;
      if (artifacts.initializerSignature != null) {
        modelJSON.initializerSignature = artifacts.initializerSignature;
      }
      await writeFileAtomic(join(paths.dir, weightsName), new Uint8Array(weightData));
      await writeFileAtomic(paths.json, JSON.stringify(modelJSON));
      await syncDir(paths.dir);
      return {
        modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON({ ...artifacts, weightSpecs, weightData }),
      };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      let text: string;
      try {
        text = await readFile(paths.json, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new HeadbenchInputError(
          code === 'ENOENT'
            ? `no tfjs model at ${paths.json} (expected a folder with model.json and its weights)`
            : `cannot read ${paths.json}: ${(err as Error).message}`,
          paths.json,
        );
      }
      let modelJSON: tf.io.ModelJSON;
      try {
        modelJSON = JSON.parse(text) as tf.io.ModelJSON;
      } catch (err) {
        throw new HeadbenchInputError(
          `${paths.json} is not valid JSON: ${(err as Error).message}`,
          paths.json,
        );
      }
      if (modelJSON == null || typeof modelJSON !== 'object' || modelJSON.modelTopology == null) {
        throw new HeadbenchInputError(
          `${paths.json} is not a tfjs model.json (no modelTopology)`,
          paths.json,
        );
      }
      return tf.io.getModelArtifactsForJSON(modelJSON, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const rel of group.paths) {
            const file = await insideModelFolder(paths.dir, rel, paths.json);
            let buf: Buffer;
            try {
              buf = await readFile(file);
            } catch (err) {
              throw new HeadbenchInputError(
                `cannot read weights file ${file} listed in ${paths.json}: ${(err as Error).message}`,
                file,
              );
            }
            buffers.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
          }
        }
        const data = tf.io.CompositeArrayBuffer.join(buffers);
        const expected = expectedWeightBytes(specs);
        if (expected !== null && expected !== data.byteLength) {
          throw new HeadbenchInputError(
            `weights of ${paths.json} hold ${data.byteLength} bytes but its weightsManifest describes ` +
              `${expected} (truncated or mismatched weights file)`,
            paths.json,
          );
        }
        return [specs, data];
      });
    },
  };
}

/** Save a LayersModel as `<dir>/model.json` + `<dir>/weights.bin` (atomic, see `fileSystemHandler`). */
export async function saveModel(model: tfl.LayersModel, dir: string): Promise<tf.io.SaveResult> {
  return model.save(fileSystemHandler(dir));
}

/** `http(s)://…/model.json` (a URL not ending in .json gets `/model.json` appended). */
function modelUrl(url: string): string {
  const u = new URL(url);
  if (!u.pathname.toLowerCase().endsWith('.json')) {
    u.pathname = `${u.pathname.replace(/\/+$/, '')}/${MODEL_JSON}`;
  }
  return u.toString();
}

/** The IOHandler for a folder, a model.json path, a file:// URL or an http(s) URL. */
export function modelHandler(pathOrUrl: string): tf.io.IOHandler {
  if (HTTP_URL.test(pathOrUrl)) {
    return tf.io.http(modelUrl(pathOrUrl), { fetchFunc: globalThis.fetch.bind(globalThis) });
  }
  return fileSystemHandler(pathOrUrl);
}

/**
 * Load a tfjs layers model from a folder, a model.json path or an http(s) URL (Node's global fetch).
 * Custom layers registered with `tf.serialization.registerClass` are resolved as usual.
 */
export async function loadModel(pathOrUrl: string): Promise<tfl.LayersModel> {
  return tfl.loadLayersModel(modelHandler(pathOrUrl));
}

/** Weights already decoded (`layer/weight` names, float32 values), e.g. a packaged model's. */
export interface NamedWeights {
  /** Names the source in errors. */
  label: string;
  weights: { name: string; shape: number[]; values: Float32Array }[];
}

interface SourceLayer {
  /** Short weight names (`kernel`, `bias`, `gamma`, `moving_mean`, ...), in order. */
  names: string[];
  tensors: tf.Tensor[];
}

/** Leaf layers (nested models flattened) that own weights. */
function weightedLayers(model: tfl.LayersModel): tfl.layers.Layer[] {
  const out: tfl.layers.Layer[] = [];
  const visit = (layers: tfl.layers.Layer[]) => {
    for (const layer of layers) {
      const inner = (layer as { layers?: tfl.layers.Layer[] }).layers;
      if (Array.isArray(inner)) visit(inner);
      else if (layer.weights.length > 0) out.push(layer);
    }
  };
  visit(model.layers);
  return out;
}

function shortName(name: string): string {
  const parts = name.replace(/:\d+$/, '').split('/');
  return parts[parts.length - 1];
}

/** Layer name of a saved weight: `block1_conv1/kernel`, `vgg16/block1_conv1/kernel` → `block1_conv1`. */
function layerOfWeight(name: string): string {
  const parts = name.replace(/:\d+$/, '').split('/');
  return parts.length >= 2 ? parts[parts.length - 2] : parts[0];
}

/** Layer classes that Keras names automatically (`conv2d`, `conv2d_1`, ...) when a model leaves them unnamed. */
const KERAS_AUTO_PREFIXES = [
  'conv2d',
  'batch_normalization',
  'dense',
  'depthwise_conv2d',
  'separable_conv2d',
];

function autoIndex(name: string, prefix: string): number | null {
  if (name === prefix) return 0;
  if (!name.startsWith(`${prefix}_`)) return null;
  const rest = name.slice(prefix.length + 1);
  return /^\d+$/.test(rest) ? Number(rest) : null;
}

/**
 * Keras numbers unnamed layers per session: InceptionV3 converted from Keras 2.2 calls its first conv
 * `conv2d_1` (1-based), tf.keras `conv2d`, and a model built after others in the same session starts higher.
 * When the source's auto-named layers of a class are the target's, in order, shifted by a constant,
 * rename them to the target's numbering (shapes are still checked layer by layer afterwards).
 */
function alignAutoNames(byLayer: Map<string, SourceLayer>, targetNames: string[]): void {
  for (const prefix of KERAS_AUTO_PREFIXES) {
    const indices = (names: Iterable<string>) =>
      [...names]
        .map((n) => autoIndex(n, prefix))
        .filter((i): i is number => i !== null)
        .sort((a, b) => a - b);
    const t = indices(targetNames);
    const s = indices(byLayer.keys());
    if (t.length === 0 || t.length !== s.length) continue;
    const offset = s[0] - t[0];
    if (offset === 0 || !s.every((v, i) => v - t[i] === offset)) continue;
    const nameOf = (i: number) => (i === 0 ? prefix : `${prefix}_${i}`);
    const moved = s.map((i) => [i - offset, byLayer.get(nameOf(i))!] as const);
    for (const i of s) byLayer.delete(nameOf(i));
    for (const [i, entry] of moved) byLayer.set(nameOf(i), entry);
  }
}

const fmtShape = (shape: readonly (number | null)[]) => `[${shape.join(',')}]`;

/**
 * Copy weights into `target` layer by layer, matching layers by name (Keras names, as `tensorflowjs_converter`
 * keeps them), and weights within a layer by their short names (`kernel`, `bias`, `gamma`, ...) or else by
 * position. `source` is decoded `NamedWeights`, a LayersModel, a model folder, a model.json path or an http(s) URL (only its weights
 * are read, so its topology need not be loadable). Source layers the target lacks (a classifier top) are
 * ignored. Keras auto-numbered layers (`conv2d_1`, … in models converted from Keras 2.2) are renumbered to
 * the target's numbering when the two sequences differ only by a constant offset. Target layers the source lacks throw unless `skipMissing`; a weight count or shape mismatch always
 * throws. All checks run before anything is assigned: on error the target is unchanged.
 */
export async function loadWeightsByName(
  target: tfl.LayersModel,
  source: string | tfl.LayersModel | NamedWeights,
  options: { skipMissing?: boolean } = {},
): Promise<{ loaded: string[]; skipped: string[] }> {
  const sourceName =
    typeof source === 'string' ? source : 'label' in source ? source.label : `model '${source.name}'`;
  const byLayer = new Map<string, SourceLayer>();
  const owned: tf.Tensor[] = [];
  const add = (name: string, tensor: tf.Tensor) => {
    const layerName = layerOfWeight(name);
    let entry = byLayer.get(layerName);
    if (!entry) {
      entry = { names: [], tensors: [] };
      byLayer.set(layerName, entry);
    }
    entry.names.push(shortName(name));
    entry.tensors.push(tensor);
  };
  try {
    if (typeof source === 'object' && 'label' in source) {
      for (const w of source.weights) {
        const tensor = tf.tensor(w.values, w.shape, 'float32');
        owned.push(tensor);
        add(w.name, tensor);
      }
    } else if (typeof source === 'string') {
      const handler = modelHandler(source);
      if (!handler.load) throw new Error(`loadWeightsByName: cannot load from ${sourceName}`);
      const artifacts = await handler.load();
      const specs = artifacts.weightSpecs ?? [];
      if (specs.length > 0 && artifacts.weightData === undefined) {
        throw new Error(`loadWeightsByName: ${sourceName} has weight specs but no weight data`);
      }
      const named = specs.length > 0 ? tf.io.decodeWeights(artifacts.weightData!, specs) : {};
      for (const spec of specs) {
        const tensor = named[spec.name];
        owned.push(tensor);
        add(spec.name, tensor);
      }
    } else {
      for (const layer of weightedLayers(source)) {
        // getWeights() returns the variables' own tensors: read, never disposed here.
        byLayer.set(layer.name, {
          names: layer.weights.map((w) => shortName(w.originalName)),
          tensors: layer.getWeights(),
        });
      }
    }

    const loaded: string[] = [];
    const skipped: string[] = [];
    const assignments: [tfl.layers.Layer, tf.Tensor[]][] = [];
    const targetLayers = weightedLayers(target);
    alignAutoNames(
      byLayer,
      targetLayers.map((l) => l.name),
    );
    for (const layer of targetLayers) {
      const expectedNames = layer.weights.map((w) => shortName(w.originalName));
      const src = byLayer.get(layer.name);
      if (!src) {
        if (options.skipMissing) {
          skipped.push(layer.name);
          continue;
        }
        throw new Error(
          `loadWeightsByName: layer '${layer.name}' (weights ${expectedNames.join(', ')}) is missing from ` +
            `${sourceName}; pass skipMissing to keep its initial weights`,
        );
      }
      if (src.tensors.length !== expectedNames.length) {
        throw new Error(
          `loadWeightsByName: layer '${layer.name}' expects ${expectedNames.length} weights ` +
            `(${expectedNames.join(', ')}) but ${sourceName} has ${src.tensors.length} ` +
            `(${src.names.join(', ')})`,
        );
      }
      const byShortName =
        new Set(src.names).size === src.names.length && expectedNames.every((n) => src.names.includes(n));
      const values = expectedNames.map((n, i) => src.tensors[byShortName ? src.names.indexOf(n) : i]);
      layer.weights.forEach((w, i) => {
        const want = w.shape;
        const got = values[i].shape;
        if (want.length !== got.length || want.some((d, k) => d !== got[k])) {
          throw new Error(
            `loadWeightsByName: layer '${layer.name}' weight '${expectedNames[i]}' expected shape ` +
              `${fmtShape(want)}, found ${fmtShape(got)} in ${sourceName}`,
          );
        }
      });
      assignments.push([layer, values]);
      loaded.push(layer.name);
    }
    if (targetLayers.length > 0 && loaded.length === 0) {
      const some = [...byLayer.keys()].slice(0, 5).join(', ');
      throw new Error(
        `loadWeightsByName: no layer of '${target.name}' matches a layer of ${sourceName} ` +
          `(source layers: ${some || 'none'}${byLayer.size > 5 ? ', ...' : ''})`,
      );
    }
    for (const [layer, values] of assignments) layer.setWeights(values);
    return { loaded, skipped };
  } finally {
    for (const t of owned) t.dispose();
  }
}

/** True when `dir` holds a saved model (model.json present). */
export async function modelExists(dir: string): Promise<boolean> {
  try {
    return (await stat(modelPaths(dir).json)).isFile();
  } catch {
    return false;
  }
}
