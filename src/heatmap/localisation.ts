/**
 * How well a result folder localises known anomalies (synthetic slides with a true mask): its
 * score grid — any cell size: 16-px cells in region mode, 224-px tiles otherwise — is read onto a
 * common fine grid (each fine cell takes the score of the grid cell under its centre), then
 * - patch AUROC: fine cells' scores against the mask pixel under each cell's centre;
 * - anomalies found: an anomaly is found when any fine cell inside it scores above the 99th
 *   percentile of normal (mask 0) cells; the smallest found is reported.
 * Both modes are compared on the same cells by passing the other's grid as `alsoScored`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { auroc } from '../scoring/metrics.ts';
import type { ScoreGrid } from './score-grid.ts';

/** The truth: a mask raster (level-0 px / downsample) and the planted anomalies' boxes and sizes. */
export interface LocalisationTruth {
  mask: { width: number; height: number; downsample: number; data: Uint8Array };
  anomalies: readonly { x: number; y: number; width: number; height: number; size: number }[];
}

export interface Localisation {
  auroc: number;
  /** Fine cells compared, and how many of them are anomalous. */
  cells: number;
  anomalousCells: number;
  found: number;
  planted: number;
  /** Size (px) of the smallest anomaly found; null when none. */
  smallestFound: number | null;
}

/**
 * Reads `scores.f32` of a result folder onto a grid of `cellSize` level-0 px cells.
 * @example const fine = await readCellScores('out', 16);
 */
export async function readCellScores(dir: string, cellSize: number): Promise<ScoreGrid> {
  const result = JSON.parse(await readFile(join(dir, 'result.json'), 'utf8')) as { input: { width: number; height: number }; grid: { cols: number; rows: number; cellSizeLevel0: number } };
  const bytes = await readFile(join(dir, 'scores.f32'));
  const g = result.grid;
  const cols = Math.floor(result.input.width / cellSize), rows = Math.floor(result.input.height / cellSize);
  const data = new Float32Array(cols * rows).fill(NaN);
  for (let r = 0; r < rows; r++) {
    const gr = Math.floor(((r + 0.5) * cellSize) / g.cellSizeLevel0);
    if (gr >= g.rows) continue;
    for (let c = 0; c < cols; c++) {
      const gc = Math.floor(((c + 0.5) * cellSize) / g.cellSizeLevel0);
      if (gc < g.cols) data[r * cols + c] = bytes.readFloatLE((gr * g.cols + gc) * 4);
    }
  }
  return { cols, rows, data };
}

/** Localisation of `grid` (cells of `cellSize` px) against the truth, on cells scored here and in `alsoScored`. */
export function localisation(grid: ScoreGrid, cellSize: number, truth: LocalisationTruth, alsoScored?: ScoreGrid): Localisation {
  const { mask } = truth;
  const scores: number[] = [], labels: number[] = [], at: number[] = [];
  for (let i = 0; i < grid.data.length; i++) {
    const v = grid.data[i]!;
    if (!Number.isFinite(v) || (alsoScored && !Number.isFinite(alsoScored.data[i]!))) continue;
    const c = i % grid.cols, r = (i - c) / grid.cols;
    const mx = Math.min(mask.width - 1, Math.floor(((c + 0.5) * cellSize) / mask.downsample));
    const my = Math.min(mask.height - 1, Math.floor(((r + 0.5) * cellSize) / mask.downsample));
    scores.push(v);
    labels.push(mask.data[my * mask.width + mx]! > 0 ? 1 : 0);
    at.push(i);
  }
  const normals = scores.filter((_, j) => labels[j] === 0).sort((a, b) => a - b);
  const cut = normals.length ? normals[Math.floor(0.99 * (normals.length - 1))]! : Infinity;
  const found = truth.anomalies.filter((a) => scores.some((v, j) => {
    if (!(v > cut)) return false;
    const c = at[j]! % grid.cols, r = (at[j]! - c) / grid.cols;
    const x = (c + 0.5) * cellSize, y = (r + 0.5) * cellSize;
    return x >= a.x && x < a.x + a.width && y >= a.y && y < a.y + a.height;
  }));
  const anomalousCells = labels.reduce((n, l) => n + l, 0);
  return {
    auroc: anomalousCells > 0 && anomalousCells < labels.length ? auroc(scores, labels) : NaN,
    cells: labels.length,
    anomalousCells,
    found: found.length,
    planted: truth.anomalies.length,
    smallestFound: found.length ? Math.min(...found.map((a) => a.size)) : null,
  };
}
