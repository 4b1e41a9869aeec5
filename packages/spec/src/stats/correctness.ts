// Per-image correctness on the test set, stored compactly in each run's summary: one bit per test image
// (in the split's test order), written as lowercase hex, image i in bit (i mod 4) of hex digit ⌊i/4⌋.

export function encodeCorrectness(correct: ArrayLike<boolean>): string {
  let out = '';
  for (let i = 0; i < correct.length; i += 4) {
    let nibble = 0;
    for (let b = 0; b < 4 && i + b < correct.length; b++) if (correct[i + b]) nibble |= 1 << b;
    out += nibble.toString(16);
  }
  return out;
}

export function decodeCorrectness(hex: string, count: number): boolean[] {
  if (!/^[0-9a-f]*$/.test(hex)) throw new RangeError('correctness: not a lowercase hex string');
  if (hex.length !== Math.ceil(count / 4))
    throw new RangeError(`correctness: ${hex.length} hex digits cannot hold exactly ${count} images`);
  const out: boolean[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = ((Number.parseInt(hex[i >> 2], 16) >> (i & 3)) & 1) === 1;
  return out;
}

/** Discordant counts of two runs on the same images: b = only A right, c = only B right. */
export function discordantPairs(a: readonly boolean[], b: readonly boolean[]): { b: number; c: number } {
  if (a.length !== b.length)
    throw new RangeError(`correctness: runs cover ${a.length} and ${b.length} test images, not the same set`);
  let onlyA = 0;
  let onlyB = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] && !b[i]) onlyA++;
    else if (b[i] && !a[i]) onlyB++;
  }
  return { b: onlyA, c: onlyB };
}
