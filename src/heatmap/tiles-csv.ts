/**
 * tiles.csv: one row per analysed tile, in plan order. Level-0 x, y, width, height; tissue fraction;
 * calibrated score (0..1) and the raw scorer output.
 */
import type { PlannedTile } from '../tiling/tile-plan.ts';

export const TILES_CSV_HEADER = 'index,col,row,x,y,width,height,tissue_fraction,score,raw_score';

/** The CSV text. */
export function tilesCsv(tiles: readonly PlannedTile[], scores: ArrayLike<number>, rawScores: ArrayLike<number>): string {
  return [...tilesCsvLines(tiles, scores, rawScores)].join('');
}

/**
 * The same text as lines (each with its newline), made as they are pulled: `writeAtomic` writes
 * them in chunks, so the whole CSV (≈ 60 B a tile, ≈ 750 B a tile of heap as one string of
 * lines) is never held.
 */
export function* tilesCsvLines(tiles: readonly PlannedTile[], scores: ArrayLike<number>, rawScores: ArrayLike<number>): Generator<string> {
  yield `${TILES_CSV_HEADER}\n`;
  for (let i = 0; i < tiles.length; i++) {
    const t = tiles[i]!;
    yield `${t.index},${t.col},${t.row},${t.x},${t.y},${t.width},${t.height},${t.tissue},${fmt(scores[i]!)},${fmt(rawScores[i]!)}\n`;
  }
}

function fmt(v: number): string {
  return Number.isFinite(v) ? Number(v.toPrecision(7)).toString() : '';
}

/** Region mode's tiles.csv header: one row per encoded region (its cells' scores are in scores.f32). */
export const REGIONS_CSV_HEADER = 'index,col,row,x,y,width,height,tissue_fraction,score,raw_score,cells,cells_above_threshold,mean_score';

/** Per-region summary of its scored cells: max calibrated (score), max raw, count above threshold, mean calibrated. */
export interface RegionCellSummary {
  cells: number;
  above: number;
  maxScore: number;
  maxRaw: number;
  meanScore: number;
}

/**
 * Region mode's CSV: a row per region (the unit that was encoded; a row per 16-px cell would be
 * millions of lines on a whole slide, and the fine grid is already in scores.f32). `score` and
 * `raw_score` are the region's worst (highest) cell, as a tile's are its own.
 */
export function regionsCsv(regions: readonly PlannedTile[], summaries: readonly RegionCellSummary[]): string {
  const lines = [REGIONS_CSV_HEADER];
  regions.forEach((t, i) => {
    const s = summaries[i]!;
    lines.push(`${t.index},${t.col},${t.row},${t.x},${t.y},${t.width},${t.height},${t.tissue},${fmt(s.maxScore)},${fmt(s.maxRaw)},${s.cells},${s.above},${fmt(s.meanScore)}`);
  });
  return `${lines.join('\n')}\n`;
}
