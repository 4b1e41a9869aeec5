// Colour and dash scales for chart lines, on the one palette in @headbench/spec (the report's figures use it too).
import { DASHES, HEAD_COLORS, PALETTE } from '@headbench/spec';

/** Stable colours for the values of one key: heads get their fixed colour, others the palette in order. */
export function colorScale(key: string, values: readonly string[]): (value: string) => string {
  const order = [...new Set(values)];
  return (v) => {
    if (key === 'head' && Object.hasOwn(HEAD_COLORS, v)) return HEAD_COLORS[v as keyof typeof HEAD_COLORS];
    const i = order.indexOf(v);
    return PALETTE[Math.max(0, i) % PALETTE.length];
  };
}

export function dashScale(values: readonly string[]): (value: string) => number[] | undefined {
  const order = [...new Set(values)];
  return (v) => DASHES[Math.max(0, order.indexOf(v)) % DASHES.length]?.slice();
}

/** `#rrggbb` with an alpha, for ±std bands. */
export function withAlpha(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}
