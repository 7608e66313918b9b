/**
 * The score grid: one float32 per tile-grid cell (cols × rows, row-major), NaN where no tissue tile
 * was analysed. Written as `scores.f32` (little-endian, no header; its shape and level-0 cell size
 * are in result.json under `grid`) and drawn as `heatmap.png`, one pixel per cell.
 */
import sharp from 'sharp';
import type { PlannedTile } from '../tiling/tile-plan.ts';
import { heatmapRgba } from './colormap.ts';

/** A grid of calibrated scores. */
export interface ScoreGrid {
  cols: number;
  rows: number;
  data: Float32Array;
}

/** Places tile scores (in `tiles` order) on the grid. */
export function buildScoreGrid(cols: number, rows: number, tiles: readonly PlannedTile[], scores: ArrayLike<number>): ScoreGrid {
  const data = new Float32Array(cols * rows).fill(NaN);
  tiles.forEach((tile, i) => {
    data[tile.row * cols + tile.col] = scores[i]!;
  });
  return { cols, rows, data };
}

/** Little-endian bytes of the grid (the `scores.f32` file). */
export function scoreGridBytes(grid: ScoreGrid): Buffer {
  const out = Buffer.alloc(grid.data.length * 4);
  for (let i = 0; i < grid.data.length; i++) out.writeFloatLE(grid.data[i]!, i * 4);
  return out;
}

/** PNG bytes: the colour-mapped grid with transparency, one pixel per cell. */
export async function heatmapPng(grid: ScoreGrid): Promise<Buffer> {
  const rgba = Buffer.alloc(grid.cols * grid.rows * 4);
  for (let i = 0; i < grid.data.length; i++) {
    const [r, g, b, a] = heatmapRgba(grid.data[i]!);
    rgba[i * 4] = r; rgba[i * 4 + 1] = g; rgba[i * 4 + 2] = b; rgba[i * 4 + 3] = a;
  }
  return sharp(rgba, { raw: { width: grid.cols, height: grid.rows, channels: 4 } }).png({ compressionLevel: 9 }).toBuffer();
}
