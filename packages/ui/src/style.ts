// Colours and dash patterns for chart lines. The head palette follows the Okabe–Ito set (distinguishable
// with colour-vision deficiencies) with fc/gap as the vermillion/blue pair, matching the server report's
// choice; kept here because the core package's style module cannot be bundled for browsers via its exports.

export const HEAD_PALETTE: Record<string, string> = {
  fc: '#D55E00',
  gap: '#0072B2',
  gmp: '#E69F00',
  avgmax: '#009E73',
  catavgmax: '#CC79A7',
  gem: '#56B4E9',
  nin: '#882255',
};
export const PALETTE = [
  '#0072B2',
  '#D55E00',
  '#009E73',
  '#E69F00',
  '#CC79A7',
  '#56B4E9',
  '#000000',
  '#882255',
  '#44AA99',
  '#999933',
  '#332288',
  '#AA4499',
];
export const DASHES: (number[] | undefined)[] = [
  undefined,
  [7, 4],
  [2, 3],
  [10, 3, 2, 3],
  [5, 2, 5, 6],
  [1, 4],
];

/** Stable colours for the values of one key: heads get their fixed colour, others the palette in order. */
export function colorScale(key: string, values: readonly string[]): (value: string) => string {
  const order = [...new Set(values)];
  return (v) => {
    if (key === 'head' && HEAD_PALETTE[v]) return HEAD_PALETTE[v];
    const i = order.indexOf(v);
    return PALETTE[Math.max(0, i) % PALETTE.length];
  };
}

export function dashScale(values: readonly string[]): (value: string) => number[] | undefined {
  const order = [...new Set(values)];
  return (v) => DASHES[Math.max(0, order.indexOf(v)) % DASHES.length];
}

/** `#rrggbb` with an alpha, for ±std bands. */
export function withAlpha(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}
