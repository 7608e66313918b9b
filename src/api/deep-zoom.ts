import sharp, { type OverlayOptions } from 'sharp';
import { InvalidParameterError, NotFoundError } from '../errors.ts';
import type { Slide } from '../readers/types.ts';

/**
 * Deep Zoom geometry (the DZI format OpenSeadragon reads), after OpenSlide's DeepZoomGenerator:
 * level `maxLevel` is the full-resolution image, each lower level halves it, down to 1×1 at level 0.
 * Tiles are `tileSize` pixels plus `overlap` pixels on each inner edge.
 */
export interface DziGeometry {
  width: number;
  height: number;
  tileSize: number;
  overlap: number;
  maxLevel: number;
}

/** Tile edge and overlap of every Deep Zoom layer we serve. @defaultValue 254 and 1 (OpenSlide's choice) */
export const DZI_TILE_SIZE = 254;
export const DZI_OVERLAP = 1;

export function dziGeometry(width: number, height: number, tileSize = DZI_TILE_SIZE, overlap = DZI_OVERLAP): DziGeometry {
  return { width, height, tileSize, overlap, maxLevel: Math.ceil(Math.log2(Math.max(width, height, 1))) };
}

/** The DZI XML descriptor. */
export function dziXml(g: DziGeometry, format: 'jpeg' | 'png'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="${format}" Overlap="${g.overlap}" TileSize="${g.tileSize}"><Size Width="${g.width}" Height="${g.height}"/></Image>\n`;
}

/** A tile's place: its rectangle in level-0 pixels and its own output size. */
export interface DziTileRect {
  /** Level-0 pixels per pixel of this Deep Zoom level (a power of two). */
  scale: number;
  level0X: number;
  level0Y: number;
  level0Width: number;
  level0Height: number;
  width: number;
  height: number;
}

/**
 * Where tile (col, row) of Deep Zoom level `level` lies. Throws NotFoundError for tiles outside
 * the image, so a bad URL gets 404 rather than a white tile.
 */
export function dziTileRect(g: DziGeometry, level: number, col: number, row: number): DziTileRect {
  if (!Number.isInteger(level) || level < 0 || level > g.maxLevel) throw new NotFoundError(`Deep Zoom level ${level} outside 0..${g.maxLevel}`);
  const scale = 2 ** (g.maxLevel - level);
  const lw = Math.ceil(g.width / scale);
  const lh = Math.ceil(g.height / scale);
  const cols = Math.ceil(lw / g.tileSize);
  const rows = Math.ceil(lh / g.tileSize);
  if (!Number.isInteger(col) || !Number.isInteger(row) || col < 0 || row < 0 || col >= cols || row >= rows) {
    throw new NotFoundError(`Deep Zoom tile ${col}_${row} outside level ${level} (${cols}×${rows} tiles)`);
  }
  const x0 = Math.max(0, col * g.tileSize - g.overlap);
  const y0 = Math.max(0, row * g.tileSize - g.overlap);
  const x1 = Math.min(lw, (col + 1) * g.tileSize + g.overlap);
  const y1 = Math.min(lh, (row + 1) * g.tileSize + g.overlap);
  const level0X = x0 * scale;
  const level0Y = y0 * scale;
  return {
    scale,
    level0X,
    level0Y,
    level0Width: Math.min(g.width, x1 * scale) - level0X,
    level0Height: Math.min(g.height, y1 * scale) - level0Y,
    width: x1 - x0,
    height: y1 - y0,
  };
}

/** Parses `{col}_{row}.{ext}` from a tile URL. */
export function parseTileName(name: string, ext: 'jpeg' | 'png'): { col: number; row: number } {
  const m = /^(\d{1,7})_(\d{1,7})\.(jpe?g|png)$/.exec(name);
  if (!m || (ext === 'png') !== (m[3] === 'png')) throw new NotFoundError(`no Deep Zoom tile named ${JSON.stringify(name)} (expected {col}_{row}.${ext})`);
  return { col: Number(m[1]), row: Number(m[2]) };
}

/** The pyramid level to read for a given scale: the smallest one still at least as detailed. */
export function bestLevel(slide: Slide, scale: number): number {
  let best = 0;
  slide.levels.forEach((l, i) => {
    // 1% slack: stored downsamples are often 3.9998 for a nominal 4
    if (l.downsample <= scale * 1.01 && l.downsample > slide.levels[best]!.downsample) best = i;
  });
  return best;
}

/** Largest region (level pixels per side) read at once; bigger reads are made in pieces. */
const MAX_READ_SIDE = 2048;

/**
 * Renders one Deep Zoom tile of a slide as JPEG: picks the best pyramid level, reads the region
 * and resizes it with sharp. Reads larger than MAX_READ_SIDE (a slide without reduced levels seen
 * from afar) are split into pieces, each resized on its own, so memory stays bounded.
 */
export async function renderSlideTile(slide: Slide, g: DziGeometry, level: number, col: number, row: number, quality = 80): Promise<Buffer> {
  const t = dziTileRect(g, level, col, row);
  const li = bestLevel(slide, t.scale);
  const ds = slide.levels[li]!.downsample;
  const readW = Math.max(1, Math.ceil(t.level0Width / ds));
  const readH = Math.max(1, Math.ceil(t.level0Height / ds));
  const piecesX = Math.ceil(readW / MAX_READ_SIDE);
  const piecesY = Math.ceil(readH / MAX_READ_SIDE);
  if (piecesX * piecesY > 4096) throw new InvalidParameterError(`Deep Zoom level ${level} of ${slide.name} would read ${readW}×${readH} pixels; the slide has no reduced levels for it`);
  let rgb: Buffer;
  if (piecesX === 1 && piecesY === 1) {
    const img = await slide.readRegion(t.level0X, t.level0Y, li, readW, readH);
    rgb = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(t.width, t.height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
  } else {
    const composites: OverlayOptions[] = [];
    for (let py = 0; py < piecesY; py++) {
      for (let px = 0; px < piecesX; px++) {
        const ox0 = Math.floor((px * t.width) / piecesX), ox1 = Math.floor(((px + 1) * t.width) / piecesX);
        const oy0 = Math.floor((py * t.height) / piecesY), oy1 = Math.floor(((py + 1) * t.height) / piecesY);
        if (ox1 <= ox0 || oy1 <= oy0) continue;
        const lx = t.level0X + ox0 * t.scale, ly = t.level0Y + oy0 * t.scale;
        const lw = Math.min(t.level0X + t.level0Width, t.level0X + ox1 * t.scale) - lx;
        const lh = Math.min(t.level0Y + t.level0Height, t.level0Y + oy1 * t.scale) - ly;
        const img = await slide.readRegion(lx, ly, li, Math.max(1, Math.ceil(lw / ds)), Math.max(1, Math.ceil(lh / ds)));
        const part = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
          .resize(ox1 - ox0, oy1 - oy0, { fit: 'fill' }).png({ compressionLevel: 0 }).toBuffer();
        composites.push({ input: part, left: ox0, top: oy0 });
      }
    }
    rgb = await sharp({ create: { width: t.width, height: t.height, channels: 3, background: '#ffffff' } })
      .composite(composites).raw().toBuffer();
  }
  return sharp(rgb, { raw: { width: t.width, height: t.height, channels: 3 } }).jpeg({ quality, mozjpeg: false }).toBuffer();
}
