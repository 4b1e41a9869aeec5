// Pretrained weights shipped inside npm packages (`weights: npm:<package>/<model>`): find the installed
// package, read its model in the package's own module format, check it, and store it as an ordinary tfjs
// layers-model folder (model.json + weights.bin, still quantized) in a cache keyed by package version.
// No tfjs import here: the API serves these folders to trainers without loading tfjs.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { HeadbenchInputError, type NpmWeightsRef, parseNpmWeights } from '@headbench/spec';

/** A weight as listed in a tfjs weights manifest (the subset headbench reads). */
export interface PackagedWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
  quantization?: { dtype: 'uint8'; min: number; scale: number };
}

/** Where a packaged model's bytes came from, recorded in model.json and in every result. */
export interface PackagedInfo {
  source: string;
  name: string;
  version: string;
  model: string;
  /** sha256 of the weight bytes (as shipped, quantized). */
  sha256: string;
}

export interface PackagedModel {
  info: PackagedInfo;
  /** The package's Keras layers-model topology (its own head included; headbench ignores that). */
  modelTopology: Record<string, unknown>;
  weightSpecs: PackagedWeightSpec[];
  /** Every shard's bytes, concatenated in manifest order. */
  data: Uint8Array;
}

/** Model folder files headbench writes for a packaged model. */
export const PACKAGED_FILES = ['model.json', 'weights.bin'] as const;

interface Shard {
  name: string;
  bytes: Uint8Array;
}

interface RawModel {
  modelJson: unknown;
  shards: Shard[];
}

type Reader = (pkg: InstalledPackage, model: string, source: string) => Promise<RawModel>;

interface InstalledPackage {
  name: string;
  dir: string;
  version: string;
  /** Models the package ships (subpaths `./models/<name>` of its exports). */
  models: string[];
  require: NodeJS.Require;
}

/**
 * nsfwjs ≥ 4: `<package>/models/<model>` exports `{ modelJson(), weightBundles[] }`; `modelJson()` resolves to a
 * module whose default is the tfjs model.json, each bundle to a module whose default is a shard's bytes in base64.
 */
const readNsfwjsModule: Reader = async (pkg, model, source) => {
  const mod = pkg.require(`${pkg.name}/models/${model}`) as Record<string, unknown>;
  const entry = Object.values(mod).find(
    (v): v is { modelJson: () => Promise<unknown>; weightBundles: (() => Promise<unknown>)[] } =>
      typeof v === 'object' &&
      v !== null &&
      typeof (v as { modelJson?: unknown }).modelJson === 'function' &&
      Array.isArray((v as { weightBundles?: unknown }).weightBundles),
  );
  if (!entry)
    throw new HeadbenchInputError(
      `${source}: ${pkg.name}/models/${model} exports no { modelJson(), weightBundles[] } model`,
    );
  const defaultOf = (m: unknown) => (m as { default?: unknown })?.default ?? m;
  const modelJson = defaultOf(await entry.modelJson());
  const paths = manifestPaths(modelJson, source);
  if (paths.length !== entry.weightBundles.length)
    throw new HeadbenchInputError(
      `${source}: the model lists ${paths.length} weight shards but the package ships ${entry.weightBundles.length}`,
    );
  // Each bundle() goes through TypeScript's __importStar, which copies a string module character by character
  // (seconds per shard); the shard modules sit next to the model JSON's, so require those directly.
  const jsonFile = Object.keys(pkg.require.cache).find(
    (f) => f.startsWith(pkg.dir) && f.replaceAll('\\', '/').endsWith(`/models/${model}/model.min.js`),
  );
  const shards: Shard[] = [];
  for (const [i, bundle] of entry.weightBundles.entries()) {
    const sibling = jsonFile && join(dirname(jsonFile), `${paths[i]}.min.js`);
    const text =
      sibling && /^[\w.-]+$/.test(paths[i]) && existsSync(sibling)
        ? pkg.require(sibling)
        : defaultOf(await bundle());
    if (typeof text !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0)
      throw new HeadbenchInputError(`${source}: weight shard ${paths[i]} is not a base64 string`);
    shards.push({ name: paths[i], bytes: new Uint8Array(Buffer.from(text, 'base64')) });
  }
  return { modelJson, shards };
};

/** Module formats headbench reads, by package: only these packages' code is ever loaded. */
const READERS: Record<string, Reader> = { nsfwjs: readNsfwjsModule };

/** The packages headbench can read weights from. */
export const PACKAGED_READERS = Object.keys(READERS);

function parseRef(source: string): NpmWeightsRef {
  const ref = parseNpmWeights(source);
  if (!ref)
    throw new HeadbenchInputError(
      `weights '${source.slice(0, 200)}' is not npm:<package>/<model> (package: an npm name; model: letters, digits, _ and -)`,
    );
  return ref;
}

/** The installed package `name`, looked up from `from` (default: this module) the way Node resolves it. */
function findPackage(name: string, source: string, from?: string): InstalledPackage {
  const req = createRequire(from ?? import.meta.url);
  const dirs = req.resolve.paths(name) ?? [];
  for (const base of dirs) {
    const dir = join(base, name);
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    let json: { version?: unknown; exports?: unknown };
    try {
      json = JSON.parse(readFileSync(manifest, 'utf8'));
    } catch (err) {
      throw new HeadbenchInputError(`${source}: ${manifest} is not valid JSON: ${(err as Error).message}`);
    }
    const exportsMap = json.exports && typeof json.exports === 'object' ? json.exports : {};
    const models = Object.keys(exportsMap)
      .map((k) => /^\.\/models\/([A-Za-z0-9_-]+)$/.exec(k)?.[1])
      .filter((m): m is string => m !== undefined)
      .sort();
    return {
      name,
      dir,
      version: typeof json.version === 'string' ? json.version : 'unknown',
      models,
      require: createRequire(manifest),
    };
  }
  throw new HeadbenchInputError(
    `${source}: the npm package '${name}' is not installed (npm install ${name}); trainers get packaged ` +
      'weights from the API instead',
  );
}

/** The package's model as shipped: found, read with its package's reader, every shard and weight checked. */
export async function readPackagedModel(
  source: string,
  options: { from?: string } = {},
): Promise<PackagedModel> {
  const ref = parseRef(source);
  const reader = READERS[ref.package];
  if (!reader)
    throw new HeadbenchInputError(
      `${source}: headbench has no reader for the npm package '${ref.package}' (it reads: ${PACKAGED_READERS.join(', ')})`,
    );
  const pkg = findPackage(ref.package, source, options.from);
  if (!pkg.models.includes(ref.model))
    throw new HeadbenchInputError(
      `${source}: ${pkg.name}@${pkg.version} ships no model '${ref.model}' (it ships: ${pkg.models.join(', ') || 'none'})`,
    );
  const raw = await reader(pkg, ref.model, source);
  const { modelTopology, weightSpecs } = checkModelJson(raw.modelJson, source);
  const data = joinShards(raw.shards, weightSpecs, source);
  return {
    info: {
      source,
      name: pkg.name,
      version: pkg.version,
      model: ref.model,
      sha256: createHash('sha256').update(data).digest('hex'),
    },
    modelTopology,
    weightSpecs,
    data,
  };
}

function manifestPaths(modelJson: unknown, source: string): string[] {
  const manifest = (modelJson as { weightsManifest?: unknown })?.weightsManifest;
  if (!Array.isArray(manifest))
    throw new HeadbenchInputError(
      `${source}: the model JSON has no weightsManifest (not a tfjs layers model)`,
    );
  return manifest.flatMap((g) => (Array.isArray(g?.paths) ? g.paths.map(String) : []));
}

const BYTES: Record<string, number> = { uint8: 1, float32: 4 };

/** A tfjs layers model (Keras topology + weights manifest) whose weights headbench can decode. */
export function checkModelJson(
  modelJson: unknown,
  source: string,
): { modelTopology: Record<string, unknown>; weightSpecs: PackagedWeightSpec[] } {
  const j = modelJson as { modelTopology?: unknown; weightsManifest?: unknown; format?: unknown };
  const topology = j?.modelTopology as
    | { model_config?: { class_name?: unknown }; class_name?: unknown }
    | undefined;
  const className = topology?.model_config?.class_name ?? topology?.class_name;
  if (
    typeof topology !== 'object' ||
    topology === null ||
    !['Model', 'Functional', 'Sequential'].includes(String(className)) ||
    (j.format !== undefined && j.format !== 'layers-model')
  )
    throw new HeadbenchInputError(
      `${source}: the model JSON is not a tfjs layers model (modelTopology.model_config.class_name is ${JSON.stringify(className ?? null)})`,
    );
  manifestPaths(modelJson, source);
  const weightSpecs: PackagedWeightSpec[] = [];
  for (const group of j.weightsManifest as { weights?: unknown }[]) {
    if (!Array.isArray(group?.weights))
      throw new HeadbenchInputError(`${source}: a weightsManifest group lists no weights`);
    for (const w of group.weights as Record<string, unknown>[]) weightSpecs.push(checkSpec(w, source));
  }
  return { modelTopology: topology as Record<string, unknown>, weightSpecs };
}

function checkSpec(w: Record<string, unknown>, source: string): PackagedWeightSpec {
  const name = typeof w?.name === 'string' ? w.name.slice(0, 200) : '';
  if (!name || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0))
    throw new HeadbenchInputError(`${source}: weight '${name || '?'}' has no name or no valid shape`);
  if (w.dtype !== 'float32')
    throw new HeadbenchInputError(
      `${source}: weight '${name}' has dtype ${JSON.stringify(w.dtype)}; headbench reads float32 weights`,
    );
  const q = w.quantization as { dtype?: unknown; min?: unknown; scale?: unknown } | undefined;
  if (q === undefined) return { name, shape: w.shape as number[], dtype: 'float32' };
  if (q.dtype !== 'uint8' || !Number.isFinite(q.min) || !Number.isFinite(q.scale))
    throw new HeadbenchInputError(
      `${source}: weight '${name}' uses quantization ${JSON.stringify(q).slice(0, 120)}; headbench reads ` +
        'uint8 with min and scale (value = min + scale·byte) or unquantized float32',
    );
  return {
    name,
    shape: w.shape as number[],
    dtype: 'float32',
    quantization: { dtype: 'uint8', min: q.min as number, scale: q.scale as number },
  };
}

/** Bytes the specs describe. */
export function specBytes(specs: PackagedWeightSpec[]): number {
  let total = 0;
  for (const s of specs)
    total += s.shape.reduce((a, b) => a * b, 1) * BYTES[s.quantization?.dtype ?? s.dtype];
  return total;
}

/**
 * Concatenate the shards, checking each against the converter's layout: every shard but the last holds
 * the first one's size, and together they hold exactly what the weights need.
 */
function joinShards(shards: Shard[], specs: PackagedWeightSpec[], source: string): Uint8Array {
  const expected = specBytes(specs);
  const total = shards.reduce((a, s) => a + s.bytes.length, 0);
  if (total !== expected) {
    const chunk = shards.length > 1 ? shards[0].bytes.length : expected;
    let offset = 0;
    let culprit = shards[shards.length - 1];
    let want = expected - (total - culprit.bytes.length);
    for (const s of shards) {
      const should = Math.min(chunk, expected - offset);
      if (s.bytes.length !== should) {
        culprit = s;
        want = should;
        break;
      }
      offset += s.bytes.length;
    }
    throw new HeadbenchInputError(
      `${source}: weight shard ${culprit.name} holds ${culprit.bytes.length} bytes, expected ${want} ` +
        `(all ${shards.length} shards hold ${total} bytes; the weights need ${expected})`,
    );
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const s of shards) {
    out.set(s.bytes, at);
    at += s.bytes.length;
  }
  return out;
}

/** The model.json headbench writes for a packaged model (weights in one file, provenance in metadata). */
export function packagedModelJson(m: PackagedModel): string {
  return JSON.stringify({
    format: 'layers-model',
    generatedBy: `headbench from ${m.info.source} (${m.info.name}@${m.info.version})`,
    convertedBy: null,
    modelTopology: m.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: m.weightSpecs }],
    userDefinedMetadata: { headbench: m.info },
  });
}

/** Cache folder of one packaged model: `<home>/weights/npm/<package>@<version>/<model>`. */
export function packagedCacheDir(
  home: string,
  info: { name: string; version: string; model: string },
): string {
  return join(home, 'weights', 'npm', `${info.name.replace('/', '+')}@${info.version}`, info.model);
}

/** Write model.json + weights.bin into `dir` through a temporary folder: readers see all of it or nothing. */
export async function writePackagedFolder(
  dir: string,
  files: { modelJson: string; weights: Uint8Array },
): Promise<void> {
  const tmp = `${dir}.${process.pid}.${randomUUID()}.tmp`;
  try {
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, 'weights.bin'), files.weights);
    await writeFile(join(tmp, 'model.json'), files.modelJson);
    // A damaged folder in the way is moved aside first; a concurrent writer that got there first wins.
    if (existsSync(dir)) {
      const aside = `${tmp}.old`;
      await rename(dir, aside).catch(() => {});
      await rm(aside, { recursive: true, force: true });
    }
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Read and check a packaged model folder: model.json's provenance, weights.bin's sha256 and length.
 * Returns null when the folder does not exist.
 */
export async function readPackagedFolder(
  dir: string,
  source: string,
): Promise<{ info: PackagedInfo; weightSpecs: PackagedWeightSpec[]; data: Uint8Array } | null> {
  let text: string;
  try {
    text = await readFile(join(dir, 'model.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let json: { userDefinedMetadata?: { headbench?: PackagedInfo } };
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new HeadbenchInputError(
      `${source}: ${join(dir, 'model.json')} is not valid JSON: ${(err as Error).message}`,
    );
  }
  const info = json.userDefinedMetadata?.headbench;
  if (!info || typeof info.sha256 !== 'string')
    throw new HeadbenchInputError(
      `${source}: ${join(dir, 'model.json')} records no packaged weights' sha256`,
    );
  const { weightSpecs } = checkModelJson(json, source);
  const data = new Uint8Array(await readFile(join(dir, 'weights.bin')));
  const sha = createHash('sha256').update(data).digest('hex');
  if (sha !== info.sha256)
    throw new HeadbenchInputError(
      `${source}: ${join(dir, 'weights.bin')} has sha256 ${sha}, its model.json records ${info.sha256}`,
    );
  if (data.length !== specBytes(weightSpecs))
    throw new HeadbenchInputError(
      `${source}: ${join(dir, 'weights.bin')} holds ${data.length} bytes, the weights need ${specBytes(weightSpecs)}`,
    );
  return { info, weightSpecs, data };
}

/**
 * A folder holding `source`'s model (read from the installed package once per package version, then from
 * `<home>/weights/npm/...`). Nothing is cached unless the package's model passed every check.
 */
export async function packagedWeightsDir(
  source: string,
  home: string,
  options: { from?: string } = {},
): Promise<string> {
  const ref = parseRef(source);
  if (!READERS[ref.package])
    throw new HeadbenchInputError(
      `${source}: headbench has no reader for the npm package '${ref.package}' (it reads: ${PACKAGED_READERS.join(', ')})`,
    );
  const pkg = findPackage(ref.package, source, options.from);
  const dir = packagedCacheDir(home, { name: pkg.name, version: pkg.version, model: ref.model });
  try {
    if (await readPackagedFolder(dir, source)) return dir;
  } catch {
    // A damaged cache entry is rebuilt from the package below.
  }
  const model = await readPackagedModel(source, options);
  await mkdir(join(dir, '..'), { recursive: true });
  await writePackagedFolder(dir, { modelJson: packagedModelJson(model), weights: model.data });
  return dir;
}

/** Float32 values of every weight: unquantized ones as stored, uint8 ones as min + scale·byte. */
export function dequantizeWeights(
  specs: PackagedWeightSpec[],
  data: Uint8Array,
): { name: string; shape: number[]; values: Float32Array }[] {
  const out: { name: string; shape: number[]; values: Float32Array }[] = [];
  let at = 0;
  for (const spec of specs) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const q = spec.quantization;
    let values: Float32Array;
    if (q) {
      values = new Float32Array(n);
      for (let i = 0; i < n; i++) values[i] = q.min + q.scale * data[at + i];
      at += n;
    } else {
      values = new Float32Array(data.slice(at, at + 4 * n).buffer);
      at += 4 * n;
    }
    out.push({ name: spec.name, shape: spec.shape, values });
  }
  return out;
}
