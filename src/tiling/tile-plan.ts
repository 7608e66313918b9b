/**
 * The tile plan: which level to read, the tile grid in level-0 coordinates, and the tissue tiles
 * in read order. Plain JSON (it crosses a queue): no pixels, no typed arrays.
 *
 * Grid origin is (0, 0), the origin of the file's own tile grid, so when the read stride divides the
 * stored tile size (or is a multiple of it) patches never straddle stored tiles needlessly. Tiles
 * are ordered by read block (about 1024 level pixels a side, a whole number of stored tiles where
 * possible), then row, then column: a batch of consecutive tiles covers a compact area, and the
 * tile reader decodes each stored tile under it once.
 */
import type { Slide, Mpp } from '../readers/types.ts';
import { InvalidParameterError, UnprocessableError } from '../errors.ts';
import { tissueFractionLookup, type TissueMask } from '../tissue/tissue-mask.ts';
import type { CellPlan } from './region-plan.ts';

/** One tile of the plan. Level-0 rectangle; `index` is its position in `plan.tiles`. */
export interface PlannedTile {
  index: number;
  col: number;
  row: number;
  /** Level-0 top-left and size. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Tissue fraction in 0..1 from the mask. */
  tissue: number;
  /** Read block id: the plan's tiles are in block order (see the file comment). */
  block: number;
}

/** Where and how to read tiles. */
export interface TilePlan {
  version: 1;
  slide: { name: string; format: string; width: number; height: number; mpp: Mpp | null; objectivePower: number | null };
  /** Level read, its downsample, and level pixels read per tile (resized to tileSizePx when different). */
  levelIndex: number;
  levelDownsample: number;
  readSizePx: number;
  readStridePx: number;
  /** Tile edge and stride at the analysis resolution. */
  tileSizePx: number;
  stridePx: number;
  /** Level-0 pixels per analysis pixel. */
  analysisDownsample: number;
  /** Analysis resolution in µm/px (null when the slide does not record its pixel size). */
  analysisMpp: number | null;
  /** Level-0 size of one tile and one step. */
  tileSizeLevel0: number;
  strideLevel0: number;
  /** The full grid (tissue or not): cols × rows cells of strideLevel0. */
  grid: { cols: number; rows: number };
  /** Read blocks, in tiles. */
  block: { cols: number; rows: number };
  /** The file's stored tile size at the read level and whether tiles align with it. */
  storedTile: { width: number; height: number; aligned: boolean };
  minTissue: number;
  tissue: { levelIndex: number; downsample: number; fraction: number; thresholds: { saturation: number; opticalDensity: number } };
  /** Tissue tiles only, in read order (in region mode: the regions, see src/tiling/region-plan.ts). */
  tiles: PlannedTile[];
  /** Region mode only (`regionSize`): the per-patch cell grid and which cells each region scores. */
  cells?: CellPlan;
}

/** Tiling parameters (a subset of AnalysisParams). */
export interface TilingParams {
  tileSize: number;
  stride: number | null;
  level: number | null;
  mpp: number | null;
  magnification: number | null;
  minTissue: number;
}

/** Level pixels a read block aims for per side. */
const BLOCK_TARGET_PX = 1024;

/**
 * Resolves the analysis resolution: level-0 pixels per analysis pixel.
 * @throws InvalidParameterError when the slide lacks the metadata the request needs.
 */
export function resolveAnalysisDownsample(slide: Slide, params: Pick<TilingParams, 'level' | 'mpp' | 'magnification'>): number {
  if (params.level !== null) {
    const level = slide.levels[params.level];
    if (!level) throw new InvalidParameterError(`${slide.name} has ${slide.levels.length} level(s); level ${params.level} does not exist`);
    return level.downsample;
  }
  if (params.mpp !== null) {
    if (!slide.mpp) throw new InvalidParameterError(`${slide.name} does not record its pixel size (mpp); use --level instead of --mpp`);
    const ds = params.mpp / ((slide.mpp.x + slide.mpp.y) / 2);
    if (ds < 0.999) throw new InvalidParameterError(`${slide.name}: requested ${params.mpp} µm/px is finer than the scan (${slide.mpp.x} µm/px)`);
    return Math.max(1, ds);
  }
  if (params.magnification !== null) {
    if (!slide.objectivePower) throw new InvalidParameterError(`${slide.name} does not record its objective power; use --mpp or --level instead of --magnification`);
    const ds = slide.objectivePower / params.magnification;
    if (ds < 0.999) throw new InvalidParameterError(`${slide.name}: requested ${params.magnification}x is above the scan's ${slide.objectivePower}x`);
    return Math.max(1, ds);
  }
  return 1;
}

/**
 * Plans tiles over the tissue mask.
 * @throws UnprocessableError when no tile reaches `minTissue`.
 * @example const plan = planTiles(slide, mask, { tileSize: 224, stride: null, level: null, mpp: null, magnification: null, minTissue: 0.5 });
 */
export function planTiles(slide: Slide, mask: TissueMask, params: TilingParams): TilePlan {
  const analysisDs = resolveAnalysisDownsample(slide, params);
  // The finest level that is not finer than needed: read as few pixels as possible.
  let levelIndex = 0;
  slide.levels.forEach((level, i) => {
    if (level.downsample <= analysisDs * 1.001 && level.downsample > slide.levels[levelIndex]!.downsample) levelIndex = i;
  });
  const level = slide.levels[levelIndex]!;
  const levelDs = level.downsample;
  const tileSizePx = params.tileSize;
  const stridePx = params.stride ?? tileSizePx;
  const scale = analysisDs / levelDs; // level pixels per analysis pixel (≥ 1)
  const readSizePx = Math.max(1, Math.round(tileSizePx * scale));
  const readStridePx = Math.max(1, Math.round(stridePx * scale));
  const tileSizeLevel0 = readSizePx * levelDs;
  const strideLevel0 = readStridePx * levelDs;
  const { width: w0, height: h0 } = slide.dimensions;
  // A tile must fit inside the slide; the partial strip at the right/bottom edge is not analysed.
  const cols = w0 >= tileSizeLevel0 ? Math.floor((w0 - tileSizeLevel0) / strideLevel0) + 1 : 0;
  const rows = h0 >= tileSizeLevel0 ? Math.floor((h0 - tileSizeLevel0) / strideLevel0) + 1 : 0;
  if (cols === 0 || rows === 0) {
    throw new UnprocessableError(`${slide.name}: ${w0}x${h0} is smaller than one tile (${Math.round(tileSizeLevel0)} level-0 px)`);
  }

  const storedW = level.tileWidth || readStridePx;
  const storedH = level.tileHeight || readStridePx;
  const aligned = alignedWith(readStridePx, storedW) && alignedWith(readStridePx, storedH) && readSizePx === readStridePx;
  const blockCols = Math.max(1, Math.floor(roundToMultiple(BLOCK_TARGET_PX, storedW) / readStridePx));
  const blockRows = Math.max(1, Math.floor(roundToMultiple(BLOCK_TARGET_PX, storedH) / readStridePx));
  const blocksPerRow = Math.ceil(cols / blockCols);

  const fraction = tissueFractionLookup(mask);
  const tiles: PlannedTile[] = [];
  for (let blockRow = 0; blockRow * blockRows < rows; blockRow++) {
    for (let blockCol = 0; blockCol < blocksPerRow; blockCol++) {
      const block = blockRow * blocksPerRow + blockCol;
      for (let row = blockRow * blockRows; row < Math.min(rows, (blockRow + 1) * blockRows); row++) {
        for (let col = blockCol * blockCols; col < Math.min(cols, (blockCol + 1) * blockCols); col++) {
          const x = Math.round(col * strideLevel0);
          const y = Math.round(row * strideLevel0);
          const size = Math.round(tileSizeLevel0);
          const tissue = fraction(x, y, size, size);
          if (tissue < params.minTissue || tissue === 0) continue;
          tiles.push({ index: tiles.length, col, row, x, y, width: size, height: size, tissue: Math.round(tissue * 1e4) / 1e4, block });
        }
      }
    }
  }
  if (tiles.length === 0) {
    throw new UnprocessableError(
      `${slide.name}: no tile has at least ${params.minTissue * 100}% tissue (tissue covers ${(mask.tissueFraction * 100).toFixed(2)}% of the slide)`,
    );
  }
  const mpp = slide.mpp ? ((slide.mpp.x + slide.mpp.y) / 2) * analysisDs : null;
  return {
    version: 1,
    slide: { name: slide.name, format: slide.format, width: w0, height: h0, mpp: slide.mpp, objectivePower: slide.objectivePower },
    levelIndex,
    levelDownsample: levelDs,
    readSizePx,
    readStridePx,
    tileSizePx,
    stridePx,
    analysisDownsample: analysisDs,
    analysisMpp: mpp === null ? null : Math.round(mpp * 1e6) / 1e6,
    tileSizeLevel0: Math.round(tileSizeLevel0),
    strideLevel0: Math.round(strideLevel0 * 1e6) / 1e6,
    grid: { cols, rows },
    block: { cols: blockCols, rows: blockRows },
    storedTile: { width: storedW, height: storedH, aligned },
    minTissue: params.minTissue,
    tissue: { levelIndex: mask.levelIndex, downsample: mask.downsample, fraction: Math.round(mask.tissueFraction * 1e6) / 1e6, thresholds: mask.thresholds },
    tiles,
  };
}

function alignedWith(stride: number, stored: number): boolean {
  return stride % stored === 0 || stored % stride === 0;
}

function roundToMultiple(target: number, unit: number): number {
  return unit >= target ? unit : Math.round(target / unit) * unit;
}
