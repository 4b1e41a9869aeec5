// Colours and dash patterns of chart lines, one copy for the report's SVG figures and the dashboard's charts.
import type { HeadName } from './names.ts';

/**
 * Okabe–Ito colours: distinguishable under the common colour-vision deficiencies. fc and gap, the pair
 * the experiment is about, get the vermillion/blue pair that stays apart even in greyscale.
 */
export const HEAD_COLORS: Record<HeadName, string> = {
  fc: '#D55E00',
  gap: '#0072B2',
  gmp: '#E69F00',
  avgmax: '#009E73',
  catavgmax: '#CC79A7',
  gem: '#56B4E9',
  nin: '#882255',
};

/** Colours for lines that are not a head, in order. */
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
] as const;

/** Dash patterns (on, off, ... in px) as a second cue besides colour; the first is a solid line. */
export const DASHES: readonly (readonly number[] | undefined)[] = [
  undefined,
  [7, 4],
  [2, 3],
  [10, 3, 2, 3],
  [5, 2, 5, 6],
  [1, 4],
];

/** Each head's own dash (print, colour blindness): fc and gap solid, the others from DASHES. */
export const HEAD_DASHES: Record<HeadName, readonly number[] | undefined> = {
  fc: undefined,
  gap: undefined,
  gmp: DASHES[1],
  avgmax: DASHES[2],
  catavgmax: DASHES[3],
  gem: DASHES[4],
  nin: DASHES[5],
};

/** A head's colour, else the palette's `fallbackIndex`-th. */
export function headColor(head: string, fallbackIndex = 0): string {
  return (HEAD_COLORS as Record<string, string>)[head] ?? PALETTE[fallbackIndex % PALETTE.length];
}
