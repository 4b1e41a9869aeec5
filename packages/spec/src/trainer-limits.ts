// What a trainer accepts from the outside (datasets, models, archives, final reports) and how text from a
// sweep or a trainer is made storable. Every bound here is the one copy the trainer and its tests use.

export const TRAINER_LIMITS = {
  /** Default cap on one download (dataset archive, model file); HEADBENCH_MAX_DOWNLOAD_BYTES sets it. */
  downloadBytes: 2 * 1024 ** 3,
  /** Default cap on the bytes an archive unpacks to; HEADBENCH_MAX_UNPACKED_BYTES sets it. */
  unpackedBytes: 8 * 1024 ** 3,
  /** Files (and folders) one archive may hold. */
  archiveEntries: 200_000,
  /**
   * Largest unpacked/packed ratio, checked once an archive has unpacked more than `ratioGraceBytes`:
   * images barely compress, raw idx files about 10×; a decompression bomb does 1000× and more.
   */
  archiveRatio: 100,
  ratioGraceBytes: 16 * 1024 ** 2,
  /** Redirects followed per download (same host only). */
  redirects: 5,
  /** Tries of a final report (complete/fail) the API keeps answering 5xx before the run is failed with what is known. */
  finalReportTries: 8,
} as const;

// C0 controls (but tab, newline, carriage return) and DEL: Postgres text refuses NUL, logs mangle the rest.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

/**
 * Text from a sweep, an upload or a trainer made safe to store and show: control characters become
 * visible escapes (`\x00`), unpaired surrogates U+FFFD, and it is cut to `max` characters.
 */
export function storableText(text: string, max = 10_000): string {
  let out = text
    .replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
  if (out.length > max) out = `${out.slice(0, max - 1)}…`;
  return out;
}
