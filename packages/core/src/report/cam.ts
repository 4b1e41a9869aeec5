import sharp from 'sharp';
import { FONT_FAMILY } from './style.js';
import { escapeXml, textWidth } from './svg.js';

export interface CamRow {
  /** Row caption, e.g. "seed 0". */
  label: string;
  /** Absolute paths of CAM PNGs. */
  files: string[];
}

export interface CamGridResult {
  width: number;
  height: number;
  /** Images placed in the grid. */
  tiles: number;
  /** Files that could not be read (missing or not an image). */
  skipped: string[];
}

const MAX_TILE = 160;
const GAP = 6;

/**
 * One row per run, one column per CAM, on a white sheet with a title and row captions.
 * Unreadable files are skipped; returns undefined (and writes nothing) when no file could be read.
 */
export async function writeCamGrid(
  rows: CamRow[],
  title: string,
  outFile: string,
): Promise<CamGridResult | undefined> {
  const skipped: string[] = [];
  const loaded: { label: string; images: Buffer[] }[] = [];
  let tileW = 0;
  let tileH = 0;
  for (const row of rows) {
    const images: Buffer[] = [];
    for (const file of row.files) {
      try {
        const img = sharp(file);
        const meta = await img.metadata();
        if (!meta.width || !meta.height) throw new Error('no size');
        if (tileW === 0) {
          // The first CAM sets the tile shape; large ones are scaled down so the grid stays readable.
          const scale = Math.min(1, MAX_TILE / Math.max(meta.width, meta.height));
          tileW = Math.max(1, Math.round(meta.width * scale));
          tileH = Math.max(1, Math.round(meta.height * scale));
        }
        images.push(
          await img
            .resize(tileW, tileH, { fit: 'contain', background: '#ffffff' })
            .flatten({ background: '#ffffff' })
            .png()
            .toBuffer(),
        );
      } catch {
        skipped.push(file);
      }
    }
    if (images.length > 0) loaded.push({ label: row.label, images });
  }
  if (loaded.length === 0) return undefined;

  const labelSize = 13;
  const left = Math.ceil(12 + Math.max(...loaded.map((r) => textWidth(r.label, labelSize))) + 12);
  const top = 40;
  const cols = Math.max(...loaded.map((r) => r.images.length));
  const width = Math.ceil(Math.max(left + cols * (tileW + GAP) + GAP, textWidth(title, 15) + 24));
  const height = top + loaded.length * (tileH + GAP) + GAP;

  const captions = [
    `<text x="${width / 2}" y="25" font-size="15" font-weight="bold" text-anchor="middle" fill="#111">${escapeXml(title)}</text>`,
    ...loaded.map(
      (r, i) =>
        `<text x="${left - 10}" y="${top + i * (tileH + GAP) + tileH / 2 + 5}" font-size="${labelSize}" text-anchor="end" fill="#333">${escapeXml(r.label)}</text>`,
    ),
  ];
  const overlay = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT_FAMILY}">${captions.join('')}</svg>`;

  const composites: sharp.OverlayOptions[] = [{ input: Buffer.from(overlay), top: 0, left: 0 }];
  loaded.forEach((r, i) => {
    r.images.forEach((input, j) => {
      composites.push({ input, top: top + i * (tileH + GAP), left: left + j * (tileW + GAP) });
    });
  });
  await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite(composites)
    .png()
    .toFile(outFile);
  return { width, height, tiles: composites.length - 1, skipped };
}
