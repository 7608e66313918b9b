import type { ScoredTile } from '../api/heatmap-tiles.ts';
import type { BatchOutput } from '../pipeline/batch.ts';
import type { PlannedTile } from '../tiling/tile-plan.ts';

/**
 * Provisional scores for the heatmap while an analysis runs. The final in-slide scorer needs every
 * embedding (it runs in the aggregate step), so until then each stored tile gets a quick stand-in:
 * its distance from the mean of the embeddings seen so far in per-dimension z units (a diagonal
 * Mahalanobis), or the bank's raw kNN distance when batches score themselves. Distances are mapped
 * to 0..1 with the robust z-score `calibrationZ` at 0.5, as the final calibration does. The API
 * marks these scores provisional; the final layer replaces them when the analysis completes.
 */
export function liveScores(tiles: readonly PlannedTile[], batches: readonly BatchOutput[], calibrationZ: number): ScoredTile[] {
  if (batches.length === 0) return [];
  const dim = batches[0]!.dim;
  let n = 0;
  const mean = new Float64Array(dim), sq = new Float64Array(dim);
  for (const b of batches) {
    for (let i = 0; i < b.count; i++) {
      for (let d = 0; d < dim; d++) {
        const v = b.embeddings[i * dim + d]!;
        mean[d] += v; sq[d] += v * v;
      }
      n++;
    }
  }
  const std = new Float64Array(dim);
  for (let d = 0; d < dim; d++) {
    mean[d] /= n;
    std[d] = Math.sqrt(Math.max(1e-12, sq[d]! / n - mean[d]! * mean[d]!));
  }
  const raw: { tile: PlannedTile; value: number }[] = [];
  for (const b of batches) {
    for (let i = 0; i < b.count; i++) {
      let value: number;
      if (b.rawScores) {
        value = b.rawScores[i]!;
      } else {
        value = 0;
        for (let d = 0; d < dim; d++) {
          const z = (b.embeddings[i * dim + d]! - mean[d]!) / std[d]!;
          value += z * z;
        }
        value = Math.sqrt(value / dim);
      }
      const tile = tiles[b.start + i];
      if (tile) raw.push({ tile, value });
    }
  }
  const sorted = raw.map((r) => r.value).sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const dev = sorted.map((v) => Math.abs(v - median)).sort((a, b) => a - b);
  const scale = Math.max(1e-9, 1.4826 * dev[Math.floor(dev.length / 2)]!);
  return raw.map(({ tile, value }) => ({
    x: tile.x, y: tile.y, w: tile.width, h: tile.height,
    score: 1 / (1 + Math.exp(-((value - median) / scale - calibrationZ))),
  }));
}

/** Final scores from tiles.csv (`index,col,row,x,y,width,height,tissue_fraction,score,raw_score`). */
export function scoresFromTilesCsv(csv: string): ScoredTile[] {
  const lines = csv.split('\n');
  const head = lines[0]!.split(',');
  const at = (name: string) => head.indexOf(name);
  const [ix, iy, iw, ih, is] = [at('x'), at('y'), at('width'), at('height'), at('score')];
  const out: ScoredTile[] = [];
  for (const line of lines.slice(1)) {
    if (!line) continue;
    const f = line.split(',');
    out.push({ x: Number(f[ix]), y: Number(f[iy]), w: Number(f[iw]), h: Number(f[ih]), score: f[is] === '' ? NaN : Number(f[is]) });
  }
  return out;
}
