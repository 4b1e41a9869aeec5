import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { Rng } from '../rng.js';

/**
 * Generated flowers: a deterministic stand-in for Oxford 17 Flowers that needs no download.
 * Classes differ by petal count, petal shape, colours and centre; every image gets a random
 * scale, rotation, position, background texture and noise, so the task is learnable but not trivial.
 * Images are written as real JPEG files into a class-folder tree, so the directory loader is what runs.
 */
export interface FlowerSpec {
  name: string;
  petals: number;
  /** Exponent of the petal profile: small = broad round petals, large = thin pointed ones. */
  sharpness: number;
  /** Fraction of the radius filled between petals (0 = petals separate to the centre). */
  fill: number;
  hue: number;
  saturation: number;
  lightness: number;
  /** Petal colour towards the centre (a second hue for bicolour flowers). */
  innerHue: number;
  centreHue: number;
  centreLightness: number;
  /** Centre radius as a fraction of the flower radius. */
  centre: number;
  /** Two rings of petals (the inner one rotated by half a petal). */
  double: boolean;
}

// Names after Oxford 17; some pairs are deliberately close (same petal count or colour).
export const FLOWER_CLASSES: readonly FlowerSpec[] = [
  {
    name: 'daffodil',
    petals: 6,
    sharpness: 1.2,
    fill: 0.15,
    hue: 52,
    saturation: 0.9,
    lightness: 0.55,
    innerHue: 40,
    centreHue: 35,
    centreLightness: 0.5,
    centre: 0.32,
    double: false,
  },
  {
    name: 'snowdrop',
    petals: 3,
    sharpness: 1.6,
    fill: 0.05,
    hue: 90,
    saturation: 0.1,
    lightness: 0.9,
    innerHue: 100,
    centreHue: 95,
    centreLightness: 0.55,
    centre: 0.18,
    double: false,
  },
  {
    name: 'lilyvalley',
    petals: 6,
    sharpness: 0.6,
    fill: 0.45,
    hue: 70,
    saturation: 0.15,
    lightness: 0.88,
    innerHue: 70,
    centreHue: 80,
    centreLightness: 0.7,
    centre: 0.12,
    double: false,
  },
  {
    name: 'bluebell',
    petals: 6,
    sharpness: 1.4,
    fill: 0.3,
    hue: 235,
    saturation: 0.6,
    lightness: 0.5,
    innerHue: 250,
    centreHue: 240,
    centreLightness: 0.3,
    centre: 0.15,
    double: false,
  },
  {
    name: 'crocus',
    petals: 6,
    sharpness: 2.2,
    fill: 0.1,
    hue: 275,
    saturation: 0.6,
    lightness: 0.55,
    innerHue: 290,
    centreHue: 45,
    centreLightness: 0.55,
    centre: 0.14,
    double: false,
  },
  {
    name: 'iris',
    petals: 3,
    sharpness: 0.8,
    fill: 0.12,
    hue: 260,
    saturation: 0.65,
    lightness: 0.45,
    innerHue: 50,
    centreHue: 50,
    centreLightness: 0.55,
    centre: 0.16,
    double: true,
  },
  {
    name: 'tigerlily',
    petals: 6,
    sharpness: 3.0,
    fill: 0.05,
    hue: 22,
    saturation: 0.95,
    lightness: 0.52,
    innerHue: 15,
    centreHue: 10,
    centreLightness: 0.3,
    centre: 0.1,
    double: false,
  },
  {
    name: 'tulip',
    petals: 4,
    sharpness: 0.5,
    fill: 0.55,
    hue: 355,
    saturation: 0.8,
    lightness: 0.48,
    innerHue: 350,
    centreHue: 0,
    centreLightness: 0.2,
    centre: 0.2,
    double: false,
  },
  {
    name: 'fritillary',
    petals: 6,
    sharpness: 0.9,
    fill: 0.4,
    hue: 320,
    saturation: 0.45,
    lightness: 0.35,
    innerHue: 330,
    centreHue: 90,
    centreLightness: 0.6,
    centre: 0.15,
    double: false,
  },
  {
    name: 'sunflower',
    petals: 21,
    sharpness: 2.5,
    fill: 0.15,
    hue: 48,
    saturation: 0.95,
    lightness: 0.5,
    innerHue: 45,
    centreHue: 25,
    centreLightness: 0.18,
    centre: 0.5,
    double: false,
  },
  {
    name: 'daisy',
    petals: 16,
    sharpness: 3.5,
    fill: 0.05,
    hue: 60,
    saturation: 0.05,
    lightness: 0.95,
    innerHue: 60,
    centreHue: 50,
    centreLightness: 0.5,
    centre: 0.25,
    double: false,
  },
  {
    name: 'coltsfoot',
    petals: 30,
    sharpness: 4.5,
    fill: 0.1,
    hue: 50,
    saturation: 0.95,
    lightness: 0.52,
    innerHue: 45,
    centreHue: 42,
    centreLightness: 0.48,
    centre: 0.35,
    double: false,
  },
  {
    name: 'dandelion',
    petals: 40,
    sharpness: 3.0,
    fill: 0.6,
    hue: 50,
    saturation: 0.95,
    lightness: 0.55,
    innerHue: 40,
    centreHue: 40,
    centreLightness: 0.5,
    centre: 0.05,
    double: true,
  },
  {
    name: 'cowslip',
    petals: 5,
    sharpness: 0.7,
    fill: 0.2,
    hue: 55,
    saturation: 0.75,
    lightness: 0.65,
    innerHue: 30,
    centreHue: 30,
    centreLightness: 0.45,
    centre: 0.16,
    double: false,
  },
  {
    name: 'buttercup',
    petals: 5,
    sharpness: 0.4,
    fill: 0.3,
    hue: 55,
    saturation: 0.95,
    lightness: 0.5,
    innerHue: 55,
    centreHue: 80,
    centreLightness: 0.45,
    centre: 0.2,
    double: false,
  },
  {
    name: 'windflower',
    petals: 8,
    sharpness: 1.0,
    fill: 0.1,
    hue: 300,
    saturation: 0.25,
    lightness: 0.82,
    innerHue: 300,
    centreHue: 55,
    centreLightness: 0.4,
    centre: 0.18,
    double: false,
  },
  {
    name: 'pansy',
    petals: 5,
    sharpness: 0.5,
    fill: 0.35,
    hue: 270,
    saturation: 0.7,
    lightness: 0.38,
    innerHue: 55,
    centreHue: 50,
    centreLightness: 0.55,
    centre: 0.1,
    double: false,
  },
];

export interface GenerateFlowersOptions {
  /** Number of classes, up to 17 (the first N of FLOWER_CLASSES). */
  classes?: number;
  perClass?: number;
  /** Side of the square images written. */
  size?: number;
  seed?: number;
  /** JPEG quality. */
  quality?: number;
}

export const GENERATOR_VERSION = 1;
const MANIFEST = 'headbench-dataset.json';

/**
 * Write the generated tree into `dir` (once: an existing tree with the same parameters is reused).
 * Returns the resolved parameters.
 */
export async function generateFlowers(dir: string, options: GenerateFlowersOptions = {}) {
  const params = {
    generator: 'flowers',
    version: GENERATOR_VERSION,
    classes: options.classes ?? 17,
    perClass: options.perClass ?? 80,
    size: options.size ?? 224,
    seed: options.seed ?? 0,
    quality: options.quality ?? 90,
  };
  if (params.classes < 2 || params.classes > FLOWER_CLASSES.length) {
    throw new RangeError(
      `generated flowers: classes must be 2..${FLOWER_CLASSES.length}, got ${params.classes}`,
    );
  }
  if (params.perClass < 1)
    throw new RangeError(`generated flowers: perClass must be ≥ 1, got ${params.perClass}`);
  if (params.size < 16) throw new RangeError(`generated flowers: size must be ≥ 16, got ${params.size}`);

  const manifestPath = join(dir, MANIFEST);
  const existing = await readFile(manifestPath, 'utf8').catch(() => undefined);
  if (existing && existing === JSON.stringify(params)) return params;

  // Write into a temporary sibling and rename, so a killed generation never leaves half a tree.
  const tmp = `${dir}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  for (let c = 0; c < params.classes; c++) {
    const spec = FLOWER_CLASSES[c];
    await mkdir(join(tmp, spec.name));
    for (let i = 0; i < params.perClass; i++) {
      const rng = new Rng(`flowers:${params.seed}:${c}:${i}`);
      const pixels = drawFlower(spec, params.size, rng);
      const jpeg = await sharp(pixels, { raw: { width: params.size, height: params.size, channels: 3 } })
        .jpeg({ quality: params.quality })
        .toBuffer();
      const n = c * params.perClass + i + 1;
      await writeFile(join(tmp, spec.name, `image_${String(n).padStart(4, '0')}.jpg`), jpeg);
    }
  }
  await writeFile(join(tmp, MANIFEST), JSON.stringify(params));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return params;
}

/** Draw one flower image as RGB uint8 HWC. */
export function drawFlower(spec: FlowerSpec, size: number, rng: Rng): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  const bg = makeBackground(size, rng);
  const radius = size * rng.uniform(0.16, 0.44);
  const cx = size * (0.5 + rng.uniform(-0.24, 0.24));
  const cy = size * (0.5 + rng.uniform(-0.24, 0.24));
  const rot = rng.uniform(0, Math.PI * 2);
  const hueJ = rng.uniform(-10, 10);
  const lightJ = rng.uniform(-0.08, 0.08);
  const outer = hsl(spec.hue + hueJ, spec.saturation, clamp01(spec.lightness + lightJ));
  const inner = hsl(spec.innerHue + hueJ, spec.saturation, clamp01(spec.lightness + lightJ - 0.05));
  const centre = hsl(spec.centreHue, 0.8, spec.centreLightness);
  const petalJitter = Array.from({ length: spec.petals }, () => 1 + rng.uniform(-0.12, 0.12));
  // A perspective squash: flowers are not always seen face-on.
  const squash = rng.uniform(0.75, 1);
  const squashAngle = rng.uniform(0, Math.PI);
  const cs = Math.cos(squashAngle);
  const sn = Math.sin(squashAngle);
  const noise = rng.uniform(3, 10);
  const edge = 1.5 / radius;
  const twoPi = Math.PI * 2;
  const sector = twoPi / spec.petals;

  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let dx = (x + 0.5 - cx) / radius;
      let dy = (y + 0.5 - cy) / radius;
      // Undo the squash along a random axis.
      const u = dx * cs + dy * sn;
      const v = (-dx * sn + dy * cs) / squash;
      dx = u * cs - v * sn;
      dy = u * sn + v * cs;
      const rho = Math.sqrt(dx * dx + dy * dy);
      const o = (y * size + x) * 3;
      let r = bg[o];
      let g = bg[o + 1];
      let b = bg[o + 2];
      if (rho < 1.3) {
        let theta = Math.atan2(dy, dx) - rot;
        theta -= twoPi * Math.floor(theta / twoPi);
        const petal = Math.min(spec.petals - 1, Math.floor(theta / sector));
        let extent = petalProfile(spec, theta) * petalJitter[petal];
        if (spec.double) extent = Math.max(extent, 0.7 * petalProfile(spec, theta + sector / 2));
        const a = smoothstep(extent + edge, extent - edge, rho);
        if (a > 0) {
          const t = Math.min(1, rho / Math.max(extent, 1e-3));
          // Petal veins: a faint radial stripe pattern.
          const vein = 1 - 0.08 * Math.abs(Math.sin(theta * spec.petals * 3));
          const pr = (inner[0] * (1 - t) + outer[0] * t) * vein;
          const pg = (inner[1] * (1 - t) + outer[1] * t) * vein;
          const pb = (inner[2] * (1 - t) + outer[2] * t) * vein;
          r = r * (1 - a) + pr * a;
          g = g * (1 - a) + pg * a;
          b = b * (1 - a) + pb * a;
        }
        const ac = smoothstep(spec.centre + edge, spec.centre - edge, rho);
        if (ac > 0) {
          const speck = 0.85 + 0.3 * hash2(x, y);
          r = r * (1 - ac) + centre[0] * speck * ac;
          g = g * (1 - ac) + centre[1] * speck * ac;
          b = b * (1 - ac) + centre[2] * speck * ac;
        }
      }
      // Sensor noise: a sum of two uniforms (triangular, std = noise) is much cheaper than a Gaussian.
      out[o] = clamp255(r + (rng.next() + rng.next() - 1) * noise * 2.45);
      out[o + 1] = clamp255(g + (rng.next() + rng.next() - 1) * noise * 2.45);
      out[o + 2] = clamp255(b + (rng.next() + rng.next() - 1) * noise * 2.45);
    }
  }
  return out;
}

function petalProfile(spec: FlowerSpec, theta: number): number {
  return spec.fill + (1 - spec.fill) * Math.abs(Math.cos((spec.petals * theta) / 2)) ** spec.sharpness;
}

/** Textured background: foliage, soil or sky, built from value noise at three scales. */
function makeBackground(size: number, rng: Rng): Float32Array {
  const kinds = [
    { hue: 100, sat: 0.45, light: 0.3 },
    { hue: 30, sat: 0.35, light: 0.3 },
    { hue: 205, sat: 0.35, light: 0.65 },
    { hue: 80, sat: 0.3, light: 0.45 },
  ];
  const kind = rng.pick(kinds);
  const base = hsl(kind.hue + rng.uniform(-15, 15), kind.sat, kind.light + rng.uniform(-0.1, 0.1));
  const alt = hsl(kind.hue + rng.uniform(-40, 40), kind.sat * 0.8, kind.light + rng.uniform(-0.2, 0.15));
  const octaves = [4, 9, 23].map((cells) => ({
    cells,
    grid: Array.from({ length: (cells + 1) ** 2 }, () => rng.next()),
  }));
  const bg = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let n = 0;
      let w = 0;
      let amp = 1;
      for (const { cells, grid } of octaves) {
        n += amp * valueNoise(grid, cells, (x / size) * cells, (y / size) * cells);
        w += amp;
        amp *= 0.5;
      }
      const t = n / w;
      const o = (y * size + x) * 3;
      bg[o] = base[0] * (1 - t) + alt[0] * t;
      bg[o + 1] = base[1] * (1 - t) + alt[1] * t;
      bg[o + 2] = base[2] * (1 - t) + alt[2] * t;
    }
  }
  return bg;
}

function valueNoise(grid: number[], cells: number, fx: number, fy: number): number {
  const x0 = Math.min(cells - 1, Math.floor(fx));
  const y0 = Math.min(cells - 1, Math.floor(fy));
  const sx = fade(fx - x0);
  const sy = fade(fy - y0);
  const s = cells + 1;
  const a = grid[y0 * s + x0];
  const b = grid[y0 * s + x0 + 1];
  const c = grid[(y0 + 1) * s + x0];
  const d = grid[(y0 + 1) * s + x0 + 1];
  return (a * (1 - sx) + b * sx) * (1 - sy) + (c * (1 - sx) + d * sx) * sy;
}

const fade = (t: number) => t * t * (3 - 2 * t);
const clamp01 = (v: number) => Math.min(1, Math.max(0, v));
const clamp255 = (v: number) => Math.min(255, Math.max(0, Math.round(v)));

function smoothstep(e0: number, e1: number, x: number): number {
  const t = clamp01((x - e0) / (e1 - e0));
  return t * t * (3 - 2 * t);
}

function hash2(x: number, y: number): number {
  let h = Math.imul(x, 374761393) + Math.imul(y, 668265263);
  h = Math.imul(h ^ (h >>> 13), 1274126177);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

function hsl(h: number, s: number, l: number): [number, number, number] {
  const hh = (((h % 360) + 360) % 360) / 60;
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const x = c * (1 - Math.abs((hh % 2) - 1));
  const m = l - c / 2;
  const [r, g, b] =
    hh < 1
      ? [c, x, 0]
      : hh < 2
        ? [x, c, 0]
        : hh < 3
          ? [0, c, x]
          : hh < 4
            ? [0, x, c]
            : hh < 5
              ? [x, 0, c]
              : [c, 0, x];
  return [(r + m) * 255, (g + m) * 255, (b + m) * 255];
}
