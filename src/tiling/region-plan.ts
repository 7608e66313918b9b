/**
 * The region plan (issue 7, `regionSize`): level-0 squares of R px, each encoded as ONE sequence
 * of (R/P)² patch tokens, scored per token — a heatmap cell per model patch (P px, 16 for the
 * default model) instead of per 224-px tile.
 *
 * Regions sit on the R-px grid from the slide origin (R a multiple of P, so cells line up with the
 * level-0 P-px grid, and with stored tiles that divide R). A cell belongs to the region of its
 * nominal grid square; a region that would cross the right or bottom edge is moved inward (by
 * whole cells) to end inside the slide, so it still sees R px of real context, and scores only the
 * cells it owns; a slide narrower than R is padded with white. Only cells with at least
 * `minTissue` tissue are scored; a region without such a cell is not encoded at all.
 *
 * It is a `TilePlan` whose `tiles` are the regions (so queues batch and carry it unchanged), plus
 * `cells`: the fine grid and, per region, which of its cells it scores (a bitmask) and where they
 * start in the slide-wide cell numbering — JSON, about R²/(8·P²)·4/3 bytes per region.
 */
import { InvalidParameterError, UnprocessableError } from '../errors.ts';
import type { Slide } from '../readers/types.ts';
import { tissueFractionLookup, type TissueMask } from '../tissue/tissue-mask.ts';
import type { PlannedTile, TilePlan } from './tile-plan.ts';

/** The fine grid of a region plan. */
export interface CellPlan {
  /** Cell edge in level-0 px (the model's patch size). */
  size: number;
  /** Region edge in level-0 px. */
  regionSize: number;
  /** The whole slide's cell grid (the right/bottom strip narrower than a cell is not scored). */
  cols: number;
  rows: number;
  /** Scored cells in all regions. */
  total: number;
  /**
   * Per region (plan.tiles order): index of its first scored cell in the slide-wide numbering,
   * how many it scores, and base64 bits over its (R/P)² cells, row-major, LSB first.
   */
  owned: { start: number; count: number; mask: string }[];
}

/** Parameters the region plan reads. */
export interface RegionPlanParams {
  regionSize: number;
  minTissue: number;
}

/** Pixels a batch of regions aims for: as many as `batchSize` 224-px tiles (at least one region). */
export function regionsPerBatch(regionSize: number, batchSize: number): number {
  return Math.max(1, Math.floor((batchSize * 224 * 224) / (regionSize * regionSize)));
}

/**
 * Checks a region size against the model's patch size.
 * @throws InvalidParameterError naming both numbers.
 */
export function checkRegionSize(regionSize: number, patchSize: number, model: string): void {
  if (!Number.isInteger(regionSize) || regionSize % patchSize !== 0) {
    throw new InvalidParameterError(`regionSize ${regionSize} is not a multiple of model '${model}'s patch size ${patchSize} px`);
  }
}

/**
 * Plans regions of `params.regionSize` over the tissue mask at level 0.
 * @throws UnprocessableError when no cell reaches `minTissue`.
 * @example const plan = planRegions(slide, mask, { regionSize: 1024, minTissue: 0.5 }, 16);
 */
export function planRegions(slide: Slide, mask: TissueMask, params: RegionPlanParams, patchSize: number): TilePlan {
  const R = params.regionSize, P = patchSize;
  if (R % P) throw new InvalidParameterError(`regionSize ${R} is not a multiple of the patch size ${P} px`);
  const { width: W, height: H } = slide.dimensions;
  const cols = Math.floor(W / P), rows = Math.floor(H / P);
  if (cols === 0 || rows === 0) throw new UnprocessableError(`${slide.name}: ${W}x${H} is smaller than one ${P}-px cell`);
  const side = R / P;
  const regionCols = Math.ceil((cols * P) / R), regionRows = Math.ceil((rows * P) / R);
  const fraction = tissueFractionLookup(mask);
  // Moved inward to end at the slide edge, on the cell grid; 0 (then padded) when the slide is smaller.
  const origin = (nominal: number, extent: number) => (nominal + R <= extent ? nominal : Math.max(0, Math.floor((extent - R) / P) * P));
  const tiles: PlannedTile[] = [];
  const owned: CellPlan['owned'] = [];
  let total = 0;
  for (let ry = 0; ry < regionRows; ry++) {
    for (let rx = 0; rx < regionCols; rx++) {
      const x = origin(rx * R, W), y = origin(ry * R, H);
      const bits = new Uint8Array(Math.ceil((side * side) / 8));
      let count = 0;
      const cx1 = Math.min(cols, (rx + 1) * side), cy1 = Math.min(rows, (ry + 1) * side);
      for (let cy = ry * side; cy < cy1; cy++) {
        for (let cx = rx * side; cx < cx1; cx++) {
          const t = fraction(cx * P, cy * P, P, P);
          if (t < params.minTissue || t === 0) continue;
          const local = (cy - y / P) * side + (cx - x / P);
          bits[local >> 3]! |= 1 << (local & 7);
          count++;
        }
      }
      if (count === 0) continue;
      const width = Math.min(R, W - x), height = Math.min(R, H - y);
      tiles.push({
        index: tiles.length, col: rx, row: ry, x, y, width, height,
        tissue: Math.round(fraction(x, y, width, height) * 1e4) / 1e4, block: tiles.length,
      });
      owned.push({ start: total, count, mask: Buffer.from(bits).toString('base64') });
      total += count;
    }
  }
  if (tiles.length === 0) {
    throw new UnprocessableError(
      `${slide.name}: no ${P}-px cell has at least ${params.minTissue * 100}% tissue (tissue covers ${(mask.tissueFraction * 100).toFixed(2)}% of the slide)`,
    );
  }
  const level = slide.levels[0]!;
  const storedW = level.tileWidth || R, storedH = level.tileHeight || R;
  return {
    version: 1,
    slide: { name: slide.name, format: slide.format, width: W, height: H, mpp: slide.mpp, objectivePower: slide.objectivePower },
    levelIndex: 0,
    levelDownsample: 1,
    readSizePx: R,
    readStridePx: R,
    tileSizePx: R,
    stridePx: R,
    analysisDownsample: 1,
    analysisMpp: slide.mpp ? Math.round(((slide.mpp.x + slide.mpp.y) / 2) * 1e6) / 1e6 : null,
    tileSizeLevel0: R,
    strideLevel0: R,
    grid: { cols: regionCols, rows: regionRows },
    block: { cols: 1, rows: 1 },
    storedTile: { width: storedW, height: storedH, aligned: R % storedW === 0 && R % storedH === 0 },
    minTissue: params.minTissue,
    tissue: { levelIndex: mask.levelIndex, downsample: mask.downsample, fraction: Math.round(mask.tissueFraction * 1e6) / 1e6, thresholds: mask.thresholds },
    tiles,
    cells: { size: P, regionSize: R, cols, rows, total, owned },
  };
}

/**
 * Calls `visit(k, cellCol, cellRow, local)` for each cell region `i` scores, in its numbering
 * order (`k` slide-wide, `local` the token index inside the region's grid).
 */
export function forEachOwnedCell(plan: TilePlan, i: number, visit: (k: number, col: number, row: number, local: number) => void): void {
  const cells = plan.cells!;
  const region = plan.tiles[i]!, own = cells.owned[i]!;
  const side = cells.regionSize / cells.size;
  const bits = Buffer.from(own.mask, 'base64');
  const cx0 = region.x / cells.size, cy0 = region.y / cells.size;
  let k = own.start;
  for (let local = 0; local < side * side; local++) {
    if (!(bits[local >> 3]! & (1 << (local & 7)))) continue;
    visit(k++, cx0 + (local % side), cy0 + Math.floor(local / side), local);
  }
  if (k !== own.start + own.count) throw new UnprocessableError(`region ${i}'s cell mask has ${k - own.start} cells, the plan says ${own.count}`);
}
