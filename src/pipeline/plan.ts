/**
 * The slide-scope first stage (`planAnalysis`): tissue mask, then the tile plan. Its output is
 * JSON and small enough to travel as queue job data or be stored beside the slide.
 */
import type { AnalysisParams } from '../../pipelines/anomaly.ts';
import type { Slide } from '../readers/types.ts';
import { computeTissueMask } from '../tissue/tissue-mask.ts';
import { planTiles, resolveAnalysisDownsample, type TilePlan } from '../tiling/tile-plan.ts';
import type { Stage } from './stage.ts';

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
  const t0 = performance.now();
  ctx.progress({ stage: 'tissue', done: 0, total: 1 });
  const mask = await computeTissueMask(slide, { maxSide: params.tissueMaskMaxSide, signal: ctx.signal });
  const t1 = performance.now();
  ctx.progress({ stage: 'tissue', done: 1, total: 1 });
  const plan = planTiles(slide, mask, params);
  const t2 = performance.now();
  ctx.log.info(
    `${slide.name}: tissue ${(mask.tissueFraction * 100).toFixed(1)}% of the slide; ${plan.tiles.length} tiles of ${plan.tileSizePx}px at level ${plan.levelIndex}` +
      ` (grid ${plan.grid.cols}x${plan.grid.rows}${plan.storedTile.aligned ? ', aligned with stored tiles' : ''})`,
  );
  return { plan, timings: { tissue: Math.round(t1 - t0), plan: Math.round(t2 - t1) } };
};
