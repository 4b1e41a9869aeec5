// The report's figures draw with the one palette in @headbench/spec (the dashboard uses the same).
import { DASHES, HEAD_DASHES, headColor } from '@headbench/spec';

export const FONT_FAMILY = 'DejaVu Sans, sans-serif';

/** An SVG stroke-dasharray from a dash pattern; undefined for a solid line. */
const svgDash = (d: readonly number[] | undefined) => d?.join(' ');

/** A head's dash, or for further groups that share a head (e.g. two learning rates) the next patterns. */
export function headDash(head: string, k: number): string | undefined {
  if (k === 0) return svgDash((HEAD_DASHES as Record<string, readonly number[] | undefined>)[head]);
  return svgDash(DASHES[1 + ((k - 1) % (DASHES.length - 1))]);
}

export { headColor };
