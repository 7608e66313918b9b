/**
 * The aggregate stage (`finishAnalysis`): raw scores (in-slide scorer fitted here when there is no
 * bank), calibration, the score grid and heatmap.png, regions.geojson, tiles.csv, and result.json
 * written last. Everything but `timings` is a function of the slide and the parameters.
 */
import { join } from 'node:path';
import type { AnalysisParams } from '../../pipelines/anomaly.ts';
import type { TilePlan } from '../tiling/tile-plan.ts';
import type { ReferenceBank } from '../scoring/bank.ts';
import { calibrate } from '../scoring/calibration.ts';
import { buildScoreGrid, heatmapPng, scoreGridBytes } from '../heatmap/score-grid.ts';
import { findRegions } from '../heatmap/regions.ts';
import { regionsGeoJson, stableUuid } from '../heatmap/geojson.ts';
import { tilesCsvLines } from '../heatmap/tiles-csv.ts';
import type { BatchOutput } from './batch.ts';
import type { ModelInfo } from './embedder.ts';
import { OUTPUT_FILES, prepareOutputDir, softwareVersion, writeAtomic } from './output.ts';
import { scoreSlide, type ScorerSummary } from './slide-scorer.ts';
import { throwIfAborted, type Stage, type StageContext } from './stage.ts';
import type { AnalysisResult } from './result.ts';
import { finishRegionAnalysis } from './region-finish.ts';

/** Input of `finishAnalysis`. */
export interface FinishInput {
  plan: TilePlan;
  model: ModelInfo;
  bank: ReferenceBank | null;
  /** File name of the bank, for result.json. */
  bankName: string | null;
  /**
   * Re-iterable source of every batch output (each tile exactly once, any order). An output may be
   * valid only until the next is requested (the spill reuses its arrays): consumers copy what they keep.
   */
  batches: () => AsyncIterable<BatchOutput>;
  outDir: string;
  /** The slide input as hashed. */
  input: { name: string; sha256: string; bytes: number };
  /** Milliseconds of the stages run before (checksum, tissue, plan, encode …); `aggregate` and `total` are added. */
  timings: Record<string, number>;
}

/** The fraction of highest-scoring tiles whose mean is the slide score (at least one tile). */
export const SLIDE_SCORE_TOP_FRACTION = 0.01;

export const UNTRAINED_NOTE =
  'The encoder is the built-in untrained ViT with fixed-seed random weights: its features are random projections, not learned pathology features. Use a trained encoder (see README) for real work.';

/**
 * result.json's `model`: the encoder with the note a reader sees beside the scores (CLI, viewer) —
 * the manifest's `summary` for a trained model, UNTRAINED_NOTE for a random-weight one.
 */
export function resultModel(model: ModelInfo): AnalysisResult['model'] {
  const { summary, ...info } = model;
  const note = model.trained ? summary : UNTRAINED_NOTE;
  return { ...info, ...(note ? { note } : {}) };
}

/**
 * The opening both finish stages share (tiles here, 16-px cells in region-finish.ts): prepare the
 * output folder, score the `total` items of the batches, calibrate each to 0..1.
 */
export async function scoreCalibrated(input: FinishInput, total: number, params: AnalysisParams, ctx: StageContext) {
  const started = performance.now();
  await prepareOutputDir(input.outDir);
  ctx.progress({ stage: 'score', done: 0, total });
  const { raw, summary } = await scoreSlide(total, input.batches, input.bank, params, ctx.signal);
  const scored = performance.now();
  ctx.progress({ stage: 'score', done: total, total });
  throwIfAborted(ctx.signal, 'aggregate');
  const calibrated = new Float64Array(total);
  for (let i = 0; i < total; i++) calibrated[i] = calibrate(summary.calibration, raw[i]!);
  return { raw, summary, calibrated, started, scored };
}

/** Stage: score, aggregate and write the result folder. Returns what result.json holds. */
export const finishAnalysis: Stage<FinishInput, AnalysisResult, AnalysisParams> = async (input, params, ctx) => {
  if (input.plan.cells) return finishRegionAnalysis(input, params, ctx); // region mode (issue 7)
  const { plan, outDir } = input;
  const total = plan.tiles.length;
  const { raw, summary, calibrated, started, scored } = await scoreCalibrated(input, total, params, ctx);
  const grid = buildScoreGrid(plan.grid.cols, plan.grid.rows, plan.tiles, calibrated);
  const regions = findRegions(grid, params.threshold, params.minRegionTiles, plan.strideLevel0);
  const idSeed = input.input.sha256;

  await writeAtomic(outDir, OUTPUT_FILES.grid, scoreGridBytes(grid));
  await writeAtomic(outDir, OUTPUT_FILES.heatmap, await heatmapPng(grid));
  await writeAtomic(outDir, OUTPUT_FILES.regions, `${JSON.stringify(regionsGeoJson(regions, idSeed), null, 1)}\n`);
  await writeAtomic(outDir, OUTPUT_FILES.tiles, tilesCsvLines(plan.tiles, calibrated, raw)); // streamed: a row per tile
  throwIfAborted(ctx.signal, 'aggregate');

  const order = Array.from({ length: total }, (_, i) => i).sort((a, b) => calibrated[b]! - calibrated[a]! || raw[b]! - raw[a]! || a - b);
  const topCount = Math.max(1, Math.ceil(total * SLIDE_SCORE_TOP_FRACTION));
  let topSum = 0;
  for (let i = 0; i < topCount; i++) topSum += calibrated[order[i]!]!;
  const timings = { ...input.timings, score: Math.round(scored - started), aggregate: Math.round(performance.now() - scored) };
  const result: AnalysisResult = {
    format: 'lamina-analysis-result',
    version: 1,
    software: { name: 'lamina', version: await softwareVersion() },
    input: {
      ...input.input,
      format: plan.slide.format,
      width: plan.slide.width,
      height: plan.slide.height,
      mpp: plan.slide.mpp,
      objectivePower: plan.slide.objectivePower,
    },
    model: resultModel(input.model),
    parameters: params,
    scorer: {
      ...summary,
      reference: input.bank
        ? { file: input.bankName, model: input.bank.header.model.name, entries: input.bank.count, sources: input.bank.header.sources.map((s) => s.name) }
        : null,
    },
    slideScore: round6(topSum / topCount),
    slideScoreDefinition: `mean calibrated score of the top ${SLIDE_SCORE_TOP_FRACTION * 100}% of tiles (${topCount} of ${total})`,
    tiles: {
      analysed: total,
      aboveThreshold: calibrated.reduce((n, s) => n + (s >= params.threshold ? 1 : 0), 0),
      level: plan.levelIndex,
      levelDownsample: plan.levelDownsample,
      analysisDownsample: plan.analysisDownsample,
      analysisMpp: plan.analysisMpp,
      tileSizePx: plan.tileSizePx,
      tileSizeLevel0: plan.tileSizeLevel0,
      strideLevel0: plan.strideLevel0,
      storedTile: plan.storedTile,
      tissue: plan.tissue,
    },
    grid: { cols: grid.cols, rows: grid.rows, cellSizeLevel0: plan.strideLevel0, file: OUTPUT_FILES.grid, dtype: 'float32-le', noData: 'NaN' },
    topTiles: order.slice(0, params.topTiles).map((i) => {
      const t = plan.tiles[i]!;
      return { index: t.index, x: t.x, y: t.y, width: t.width, height: t.height, score: round6(calibrated[i]!), rawScore: round6(raw[i]!) };
    }),
    regions: regions.map(({ polygon: _polygon, ...r }) => ({ id: stableUuid(`${idSeed}:region:${r.index}`), ...r })),
    files: { ...OUTPUT_FILES },
    // read/embed are parts of encode, not added again.
    timings: { ...timings, total: Object.entries(timings).reduce((a, [k, v]) => (k === 'read' || k === 'embed' ? a : a + v), 0) },
  };
  await writeAtomic(outDir, OUTPUT_FILES.result, `${JSON.stringify(result, null, 2)}\n`);
  ctx.log.info(`wrote ${join(outDir, OUTPUT_FILES.result)}`);
  return result;
};

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

export type { ScorerSummary };
