/**
 * The slide-scope first stage (`planAnalysis`): tissue mask, then the tile plan — or, with
 * `regionSize`, the region plan (src/tiling/region-plan.ts). Its output is JSON and small enough
 * to travel as queue job data or be stored beside the slide.
 */
import type { AnalysisParams } from '../../pipelines/anomaly.ts';
import { InvalidParameterError, UnprocessableError } from '../errors.ts';
import { resolveModel } from '../encoder/model-store.ts';
import type { Slide } from '../readers/types.ts';
import { computeTissueMask } from '../tissue/tissue-mask.ts';
import { checkRegionSize, planRegions } from '../tiling/region-plan.ts';
import { planTiles, resolveAnalysisDownsample, type TilePlan } from '../tiling/tile-plan.ts';
import type { Stage } from './stage.ts';

/**
 * Region mode's checks before any pixel is read: level-0 analysis, a model with patch tokens, a
 * region size that is a multiple of its patch size. Returns the patch size (the cell size).
 * @throws InvalidParameterError / UnprocessableError naming what is wrong.
 */
export async function regionCellSize(slide: Slide, params: AnalysisParams): Promise<number> {
  const R = params.regionSize!;
  if (resolveAnalysisDownsample(slide, params) !== 1) {
    throw new InvalidParameterError(`regionSize encodes level-0 pixels (native resolution); drop level/mpp/magnification (got ${params.level !== null ? `level ${params.level}` : params.mpp !== null ? `mpp ${params.mpp}` : `magnification ${params.magnification}`})`);
  }
  const { manifest } = await resolveModel(params.model);
  if (manifest.architecture !== 'vit' || !manifest.patchSize) {
    throw new UnprocessableError(`model '${manifest.name}' is not a ViT with a patch size; region analysis needs one`);
  }
  if (!manifest.outputs.tokens) {
    throw new UnprocessableError(`model '${manifest.name}' has no patch-token output (manifest outputs.tokens); region analysis scores patch tokens`);
  }
  checkRegionSize(R, manifest.patchSize, manifest.name);
  return manifest.patchSize;
}

/** Output of `planAnalysis`: the plan and how long each part took (ms). */
export interface PlannedAnalysis {
  plan: TilePlan;
  timings: { tissue: number; plan: number };
}

/**
 * Stage: tissue mask and tile plan.
 * @throws UnprocessableError when the slide has no tissue or no tile reaches minTissue.
 * @example const { plan } = await planAnalysis({ slide }, parseAnalysisParams({}), quietContext());
 */
export const planAnalysis: Stage<{ slide: Slide }, PlannedAnalysis, AnalysisParams> = async ({ slide }, params, ctx) => {
  // Resolve the resolution first: a bad --mpp fails before the mask is read.
  resolveAnalysisDownsample(slide, params);
  const cellSize = params.regionSize !== null ? await regionCellSize(slide, params) : 0;
  const t0 = performance.now();
  ctx.progress({ stage: 'tissue', done: 0, total: 1 });
  const mask = await computeTissueMask(slide, { maxSide: params.tissueMaskMaxSide, signal: ctx.signal });
  const t1 = performance.now();
  ctx.progress({ stage: 'tissue', done: 1, total: 1 });
  if (cellSize) {
    const plan = planRegions(slide, mask, { regionSize: params.regionSize!, minTissue: params.minTissue }, cellSize);
    const t2 = performance.now();
    const c = plan.cells!;
    ctx.log.info(`${slide.name}: tissue ${(mask.tissueFraction * 100).toFixed(1)}% of the slide; ${plan.tiles.length} regions of ${c.regionSize}px at level 0, ` +
      `${c.total} tissue cells of ${c.size}px scored (cell grid ${c.cols}x${c.rows})`);
    return { plan, timings: { tissue: Math.round(t1 - t0), plan: Math.round(t2 - t1) } };
  }
  const plan = planTiles(slide, mask, params);
  const t2 = performance.now();
  ctx.log.info(
    `${slide.name}: tissue ${(mask.tissueFraction * 100).toFixed(1)}% of the slide; ${plan.tiles.length} tiles of ${plan.tileSizePx}px at level ${plan.levelIndex}` +
      ` (grid ${plan.grid.cols}x${plan.grid.rows}${plan.storedTile.aligned ? ', aligned with stored tiles' : ''})`,
  );
  return { plan, timings: { tissue: Math.round(t1 - t0), plan: Math.round(t2 - t1) } };
};
