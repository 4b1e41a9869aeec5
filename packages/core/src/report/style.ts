import type { HeadName } from '../config.js';

export const FONT_FAMILY = 'DejaVu Sans, sans-serif';

/**
 * Okabe–Ito colours: distinguishable under the common colour-vision deficiencies. fc and gap, the
 * pair the experiment is about, get the vermillion/blue pair that stays apart even in greyscale.
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

/** Dash patterns as a second cue besides colour (print, colour blindness). */
export const HEAD_DASHES: Record<HeadName, string | undefined> = {
  fc: undefined,
  gap: undefined,
  gmp: '7 4',
  avgmax: '2 3',
  catavgmax: '10 3 2 3',
  gem: '5 2 5 6',
  nin: '1 3',
};

/** Colours for anything that is not a known head. */
export const FALLBACK_COLORS = ['#000000', '#999999', '#882255', '#44AA99', '#117733', '#332288'];

/** Extra dash patterns for groups that share a head (e.g. the same head at two learning rates). */
export const EXTRA_DASHES = ['6 3', '2 2', '12 4', '8 3 2 3'];

export function headColor(head: string, fallbackIndex = 0): string {
  return (
    (HEAD_COLORS as Record<string, string>)[head] ?? FALLBACK_COLORS[fallbackIndex % FALLBACK_COLORS.length]
  );
}
