/**
 * tiles.csv: one row per analysed tile, in plan order. Level-0 x, y, width, height; tissue fraction;
 * calibrated score (0..1) and the raw scorer output.
 */
import type { PlannedTile } from '../tiling/tile-plan.ts';

export const TILES_CSV_HEADER = 'index,col,row,x,y,width,height,tissue_fraction,score,raw_score';

/** The CSV text. */
export function tilesCsv(tiles: readonly PlannedTile[], scores: ArrayLike<number>, rawScores: ArrayLike<number>): string {
  const lines = [TILES_CSV_HEADER];
  tiles.forEach((t, i) => {
    lines.push(`${t.index},${t.col},${t.row},${t.x},${t.y},${t.width},${t.height},${t.tissue},${fmt(scores[i]!)},${fmt(rawScores[i]!)}`);
  });
  return `${lines.join('\n')}\n`;
}

function fmt(v: number): string {
  return Number.isFinite(v) ? Number(v.toPrecision(7)).toString() : '';
}
