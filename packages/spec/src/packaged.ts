// Pretrained backbones that ship inside npm packages (`weights: npm:<package>/<model>`): which packages and
// models headbench reads, what backbone each fits, and the one rule for a well-formed `npm:` string.
import type { BackboneName } from './names.ts';

/** An npm package name (optionally scoped), lowercase as npm requires, at most 214 characters. */
const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._-]{0,99}\/)?[a-z0-9][a-z0-9._-]{0,99}$/;
/** A model inside it: letters, digits, `_` and `-` only (never a dot, so never `..`), at most 64. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface NpmWeightsRef {
  package: string;
  model: string;
}

/** `npm:<package>/<model>` split into its parts; null when malformed. */
export function parseNpmWeights(s: string): NpmWeightsRef | null {
  if (!s.startsWith('npm:')) return null;
  const rest = s.slice(4);
  const cut = rest.lastIndexOf('/');
  if (cut <= 0) return null;
  const pkg = rest.slice(0, cut);
  const model = rest.slice(cut + 1);
  if (pkg.length > 214 || !PACKAGE_NAME.test(pkg) || !MODEL_NAME.test(model)) return null;
  return { package: pkg, model };
}

export interface PackagedWeights {
  /** The `weights` string: `npm:<package>/<model>`. */
  ref: string;
  package: string;
  model: string;
  /** The package version headbench reads and tests (installed as an exact dependency). */
  version: string;
  backbone: BackboneName;
  /** MobileNetV2 width multiplier the weights were trained at. */
  alpha?: number;
  /** Input side the package's model was trained at. */
  size: number;
  /** Where the weights come from, as the report says it. */
  origin: string;
}

const NSFWJS_ORIGIN =
  'nsfwjs 4.4.0 (MIT, Infinite Red): Keras 2.2.4 model, ImageNet-initialised and fine-tuned by the ' +
  "package's authors on their own 5-class image data; weights uint8-quantized";

/** Every packaged model headbench knows, in the order the dashboard offers them. */
export const PACKAGED_WEIGHTS: readonly PackagedWeights[] = [
  {
    ref: 'npm:nsfwjs/mobilenet_v2',
    package: 'nsfwjs',
    model: 'mobilenet_v2',
    version: '4.4.0',
    backbone: 'mobilenetv2',
    alpha: 1.0,
    size: 224,
    origin: NSFWJS_ORIGIN,
  },
  {
    ref: 'npm:nsfwjs/inception_v3',
    package: 'nsfwjs',
    model: 'inception_v3',
    version: '4.4.0',
    backbone: 'inceptionv3',
    size: 299,
    origin: NSFWJS_ORIGIN,
  },
];

/** The known packaged model a `weights` string names, if any. */
export function packagedWeights(ref: string): PackagedWeights | undefined {
  return PACKAGED_WEIGHTS.find((p) => p.ref === ref);
}

/** Why `weights` cannot go into `backbone` (alpha `alpha`); null when it can or is not a known packaged model. */
export function packagedWeightsIssue(weights: string, backbone: string, alpha?: number): string | null {
  const p = packagedWeights(weights);
  if (!p) return null;
  if (p.backbone !== backbone) return `${weights} holds ${p.backbone} weights; the backbone is ${backbone}`;
  if (p.alpha !== undefined && (alpha ?? 1.0) !== p.alpha)
    return `${weights} holds ${p.backbone} weights at alpha ${p.alpha}; the run asks for alpha ${alpha}`;
  return null;
}
