import sharp from 'sharp';
import { COLOUR_LUT } from './colormap.ts';
import { dziTileRect, type DziGeometry } from './deep-zoom.ts';

/** One scored tile in level-0 pixels. */
export interface ScoredTile {
  x: number;
  y: number;
  w: number;
  h: number;
  score: number;
}

/**
 * Scored tiles bucketed on a coarse grid so a Deep Zoom tile finds the few that overlap it without
 * scanning them all (a slide has up to ~10^5 tiles; a viewer asks for dozens of overlay tiles).
 */
export class ScoredTileIndex {
  private readonly buckets = new Map<number, number[]>();
  private readonly cell: number;
  private readonly cols: number;

  constructor(readonly tiles: readonly ScoredTile[], readonly width: number, readonly height: number) {
    this.cell = Math.max(256, ...tiles.slice(0, 64).map((t) => Math.max(t.w, t.h)));
    this.cols = Math.ceil(width / this.cell) + 1;
    tiles.forEach((t, i) => {
      for (let cy = Math.floor(t.y / this.cell); cy <= Math.floor((t.y + t.h - 1) / this.cell); cy++) {
        for (let cx = Math.floor(t.x / this.cell); cx <= Math.floor((t.x + t.w - 1) / this.cell); cx++) {
          const k = cy * this.cols + cx;
          const b = this.buckets.get(k);
          if (b) b.push(i); else this.buckets.set(k, [i]);
        }
      }
    });
  }

  /** Indices of tiles overlapping a level-0 rectangle, in ascending order (stable paint order). */
  query(x: number, y: number, w: number, h: number): number[] {
    const found = new Set<number>();
    for (let cy = Math.floor(y / this.cell); cy <= Math.floor((y + h - 1) / this.cell); cy++) {
      for (let cx = Math.max(0, Math.floor(x / this.cell)); cx <= Math.min(this.cols - 1, Math.floor((x + w - 1) / this.cell)); cx++) {
        for (const i of this.buckets.get(cy * this.cols + cx) ?? []) {
          const t = this.tiles[i]!;
          if (t.x < x + w && t.x + t.w > x && t.y < y + h && t.y + t.h > y) found.add(i);
        }
      }
    }
    return [...found].sort((a, b) => a - b);
  }
}

/**
 * One Deep Zoom tile of the heatmap layer as PNG: each scored tile painted in its colour over its
 * level-0 rectangle, transparent where there is no score or the score is below `threshold`. The
 * layer has the slide's geometry, so OpenSeadragon lays it exactly over the slide.
 */
export async function renderHeatmapTile(index: ScoredTileIndex, g: DziGeometry, level: number, col: number, row: number, threshold = 0): Promise<Buffer> {
  const t = dziTileRect(g, level, col, row);
  const rgba = Buffer.alloc(t.width * t.height * 4);
  for (const i of index.query(t.level0X, t.level0Y, t.level0Width, t.level0Height)) {
    const s = index.tiles[i]!;
    if (!Number.isFinite(s.score) || s.score < threshold) continue;
    const [r, gr, b] = COLOUR_LUT[Math.round(Math.min(1, Math.max(0, s.score)) * 255)]!;
    const x0 = Math.max(0, Math.floor((s.x - t.level0X) / t.scale));
    const y0 = Math.max(0, Math.floor((s.y - t.level0Y) / t.scale));
    const x1 = Math.min(t.width, Math.max(x0 + 1, Math.ceil((s.x + s.w - t.level0X) / t.scale)));
    const y1 = Math.min(t.height, Math.max(y0 + 1, Math.ceil((s.y + s.h - t.level0Y) / t.scale)));
    for (let y = y0; y < y1; y++) {
      let o = (y * t.width + x0) * 4;
      for (let x = x0; x < x1; x++, o += 4) {
        rgba[o] = r; rgba[o + 1] = gr; rgba[o + 2] = b; rgba[o + 3] = 255;
      }
    }
  }
  return sharp(rgba, { raw: { width: t.width, height: t.height, channels: 4 } }).png({ compressionLevel: 6 }).toBuffer();
}

/** The legend strip: scores 0 → 1 left to right. */
export function renderLegend(width = 256, height = 16): Promise<Buffer> {
  const rgb = Buffer.alloc(width * height * 3);
  for (let x = 0; x < width; x++) {
    const [r, g, b] = COLOUR_LUT[Math.round((x / Math.max(1, width - 1)) * 255)]!;
    for (let y = 0; y < height; y++) rgb.set([r, g, b], (y * width + x) * 3);
  }
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
