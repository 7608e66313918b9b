/**
 * The aggregate stage in region mode (`finishAnalysis` hands over when the plan has `cells`):
 * every scored cell's raw score (a token bank: `scoreSlide`'s kNN, as tiles; in-slide: `scoreCells`
 * here, kNN to the slide's own cells beyond a neighbourhood or Mahalanobis, on the GPU with engine
 * webgpu), calibration, then the fine grid — scores.f32 and heatmap.png at one value per model
 * patch (16 px), regions.geojson traced on that grid — tiles.csv with a row per encoded region, and
 * result.json (`mode: 'regions'`). Memory: a few numbers per cell, never a level's pixels.
 */
import { join } from 'node:path';
import type { AnalysisParams } from '../../pipelines/anomaly.ts';
import { heatmapPng, scoreGridBytes, type ScoreGrid } from '../heatmap/score-grid.ts';
import { findRegions } from '../heatmap/regions.ts';
import { regionsGeoJson, stableUuid } from '../heatmap/geojson.ts';
import { regionsCsv, type RegionCellSummary } from '../heatmap/tiles-csv.ts';
import { forEachOwnedCell } from '../tiling/region-plan.ts';
import { calibrate, fitCalibration } from '../scoring/calibration.ts';
import { fitMahalanobis, mahalanobisScores } from '../scoring/mahalanobis.ts';
import { knnScores, packPosition, type MemoryBank } from '../scoring/knn.ts';
import { createKnnScorer } from '../scoring/knn-gpu.ts';
import { createOrtKnnScorer } from '../scoring/knn-ort.ts';
import type { BatchOutput } from './batch.ts';
import { UnprocessableError } from '../errors.ts';
import { resultModel, scoreCalibrated, SLIDE_SCORE_TOP_FRACTION, type FinishInput } from './finish.ts';
import { OUTPUT_FILES, prepareOutputDir, softwareVersion, writeAtomic } from './output.ts';
import { gatherFitSample, type ScorerSummary } from './slide-scorer.ts';
import { gpuTokenDistances, releaseGpuTokenScorer, tokenScoreOnGpu } from './token-score-gpu.ts';
import type { AnalysisResult } from './result.ts';
import { throwIfAborted, type StageContext } from './stage.ts';

/** result.json of a region analysis: the tile-mode shape, cells in the place of tiles, plus the mode. */
export interface RegionAnalysisResult extends AnalysisResult {
  mode: 'regions';
  /** What was encoded: regions of `regionSize` level-0 px, scored per `cellSize` px patch token. */
  encoding: { regionSize: number; regions: number; cellSize: number; cells: number; tokensPerRegion: number };
}

/** Stage body: score cells, write the fine grid and result.json. */
export async function finishRegionAnalysis(input: FinishInput, params: AnalysisParams, ctx: StageContext): Promise<RegionAnalysisResult> {
  const { plan, outDir } = input;
  const cells = plan.cells!;
  const total = cells.total;
  const { raw, summary, calibrated, started, scored } = await scoreCells(input, total, params, ctx);
  // Cell k's grid position, and each region's summary, from the plan's masks.
  const grid: ScoreGrid = { cols: cells.cols, rows: cells.rows, data: new Float32Array(cells.cols * cells.rows).fill(NaN) };
  const cellAt = new Int32Array(total);
  const perRegion: RegionCellSummary[] = plan.tiles.map((_, i) => {
    const s = { cells: 0, above: 0, maxScore: -Infinity, maxRaw: -Infinity, meanScore: 0 };
    forEachOwnedCell(plan, i, (k, col, row) => {
      const at = row * cells.cols + col;
      grid.data[at] = calibrated[k]!;
      cellAt[k] = at;
      s.cells++;
      if (calibrated[k]! >= params.threshold) s.above++;
      s.maxScore = Math.max(s.maxScore, calibrated[k]!);
      s.maxRaw = Math.max(s.maxRaw, raw[k]!);
      s.meanScore += calibrated[k]!;
    });
    s.meanScore /= Math.max(1, s.cells);
    return s;
  });
  const regions = findRegions(grid, params.threshold, params.minRegionTiles, cells.size);
  const idSeed = input.input.sha256;
  await writeAtomic(outDir, OUTPUT_FILES.grid, scoreGridBytes(grid));
  await writeAtomic(outDir, OUTPUT_FILES.heatmap, await heatmapPng(grid));
  await writeAtomic(outDir, OUTPUT_FILES.regions, `${JSON.stringify(regionsGeoJson(regions, idSeed), null, 1)}\n`);
  await writeAtomic(outDir, OUTPUT_FILES.tiles, regionsCsv(plan.tiles, perRegion));
  throwIfAborted(ctx.signal, 'aggregate');

  // Top cells without sorting millions: the slide score needs the top 1%, topTiles the first few.
  const topCount = Math.max(1, Math.ceil(total * SLIDE_SCORE_TOP_FRACTION));
  const order = topIndices(calibrated, raw, Math.max(topCount, params.topTiles));
  let topSum = 0;
  for (let i = 0; i < topCount; i++) topSum += calibrated[order[i]!]!;
  const timings = { ...input.timings, score: Math.round(scored - started), aggregate: Math.round(performance.now() - scored) };
  const P = cells.size;
  const result: RegionAnalysisResult = {
    format: 'lamina-analysis-result',
    version: 1,
    mode: 'regions',
    software: { name: 'lamina', version: await softwareVersion() },
    input: {
      ...input.input, format: plan.slide.format, width: plan.slide.width, height: plan.slide.height, mpp: plan.slide.mpp, objectivePower: plan.slide.objectivePower,
    },
    model: resultModel(input.model),
    parameters: params,
    scorer: {
      ...summary,
      reference: input.bank
        ? { file: input.bankName, model: input.bank.header.model.name, entries: input.bank.count, sources: input.bank.header.sources.map((s) => s.name) }
        : null,
    },
    encoding: { regionSize: cells.regionSize, regions: plan.tiles.length, cellSize: P, cells: total, tokensPerRegion: (cells.regionSize / P) ** 2 },
    slideScore: round6(topSum / topCount),
    slideScoreDefinition: `mean calibrated score of the top ${SLIDE_SCORE_TOP_FRACTION * 100}% of ${P}-px cells (${topCount} of ${total})`,
    // In region mode the scored unit is the cell: `tiles` describes cells, `topTiles` lists cells.
    tiles: {
      analysed: total,
      aboveThreshold: calibrated.reduce((n, s) => n + (s >= params.threshold ? 1 : 0), 0),
      level: 0,
      levelDownsample: 1,
      analysisDownsample: 1,
      analysisMpp: plan.analysisMpp,
      tileSizePx: P,
      tileSizeLevel0: P,
      strideLevel0: P,
      storedTile: plan.storedTile,
      tissue: plan.tissue,
    },
    grid: { cols: grid.cols, rows: grid.rows, cellSizeLevel0: P, file: OUTPUT_FILES.grid, dtype: 'float32-le', noData: 'NaN' },
    topTiles: order.slice(0, params.topTiles).map((k) => {
      const at = cellAt[k]!, col = at % cells.cols, row = (at - col) / cells.cols;
      return { index: k, x: col * P, y: row * P, width: P, height: P, score: round6(calibrated[k]!), rawScore: round6(raw[k]!) };
    }),
    regions: regions.map(({ polygon: _polygon, ...r }) => ({ id: stableUuid(`${idSeed}:region:${r.index}`), ...r })),
    files: { ...OUTPUT_FILES },
    timings: { ...timings, total: Object.entries(timings).reduce((a, [k, v]) => (k === 'read' || k === 'embed' ? a : a + v), 0) },
  };
  await writeAtomic(outDir, OUTPUT_FILES.result, `${JSON.stringify(result, null, 2)}\n`);
  ctx.log.info(`wrote ${join(outDir, OUTPUT_FILES.result)}`);
  return result;
}

/**
 * In-slide kNN of cells (scorer auto or knn): a cell is scored against an evenly spread sample of
 * the slide's own cells, never matching a sample cell within this many level-0 px of it, so an
 * anomaly smaller than that cannot find its own kind (docs/benchmarks.md, issue 7).
 */
export const NEAR_EXCLUSION_PX = 256;

/**
 * Raw and calibrated cell scores. Without a bank the in-slide scorers run here rather than in
 * `scoreSlide`, so that they can run asynchronously on the GPU (engine webgpu) and see the cells'
 * grid positions: millions of cells are the bulk of a region analysis on the CPU.
 * - auto | knn: mean distance to the k nearest of an evenly spread sample of `maxFitSamples`
 *   cells, outside `NEAR_EXCLUSION_PX` of the cell (kernels/knn; method `knn-self`).
 * - mahalanobis: `scoreSlide`'s robust Ledoit–Wolf fit on the same sample, distances through
 *   kernels/whiten on the GPU (equal to the CPU scores to f32 rounding) by token-score-gpu.ts's
 *   rules: engine webgpu, not LAMINA_TOKEN_SCORE_GPU=0, a hardware adapter unless forced with =1
 *   (lavapipe is slower than one CPU thread here). A GPU that is missing or fails mid-stage leaves
 *   the rest of the cells to the CPU with a warning in the analysis's log, which also says where
 *   the cells were scored; the model's device copy is freed at the end of the stage.
 * Both are calibrated on the slide's own scores, as `scoreSlide` does.
 */
async function scoreCells(input: FinishInput, total: number, params: AnalysisParams, ctx: StageContext) {
  if (input.bank) return scoreCalibrated(input, total, params, ctx);
  const started = performance.now();
  await prepareOutputDir(input.outDir);
  ctx.progress({ stage: 'score', done: 0, total });
  const { plan } = input;
  const positions = new Uint32Array(total);
  plan.tiles.forEach((_, i) => forEachOwnedCell(plan, i, (k, col, row) => { positions[k] = packPosition(col, row); }));
  const { sampleIndices, sample, dim } = await gatherFitSample(total, input.batches, params.maxFitSamples, ctx.signal, 'cell');
  const n = sampleIndices.length;
  const warn = (m: string) => ctx.log.warn(m);
  let score: (out: BatchOutput) => Promise<Float64Array>;
  let close: () => Promise<void>;
  let summary: Omit<ScorerSummary, 'calibration'>;
  let scoredOn: (() => string) | undefined;
  if (params.scorer === 'mahalanobis') {
    const model = fitMahalanobis(sample, n, dim);
    const gpu = params.engine === 'webgpu' && tokenScoreOnGpu();
    const gpuWarn = (m: string) => warn(`lamina: ${m}; scoring the rest of the cells on the CPU`);
    let onGpu = 0;
    score = async (out) => {
      const d = gpu ? await gpuTokenDistances(model, out.embeddings, out.count, { warn: gpuWarn }) : null;
      if (!d) return mahalanobisScores(model, out.embeddings, out.count);
      onGpu += out.count;
      return d;
    };
    // nothing outlives the analysis: the shared context goes with its last model
    close = async () => { if (gpu) await releaseGpuTokenScorer(model); };
    scoredOn = () => `Mahalanobis distances of ${total} cells ${onGpu === total ? 'on the GPU' : onGpu === 0 ? 'on the CPU' : `(${onGpu} on the GPU, the rest on the CPU)`}`;
    summary = { method: 'mahalanobis', k: null, shrinkage: round6(model.shrinkage), fitSamples: n };
  } else {
    const memory: MemoryBank = { dim, count: n, data: sample };
    const bankPositions = Uint32Array.from(sampleIndices, (cell) => positions[cell]!);
    const radius = Math.ceil(NEAR_EXCLUSION_PX / plan.cells!.size);
    // engine cpu (or no GPU): onnxruntime's threaded Gemm, not the single-threaded JS loop (~45 min at 1.6 M cells)
    let scorer = await createKnnScorer(memory, { engine: params.engine, bankPositions, warn });
    if (scorer.device === 'cpu') scorer = await createOrtKnnScorer(memory, { bankPositions, warn });
    score = async (out) => {
      const near = positions.subarray(out.start, out.start + out.count);
      const s = await scorer.score(out.embeddings, out.count, params.k, { positions: near, radius });
      // a cell whose whole sample lies within its neighbourhood (a small slide) is scored without the exclusion
      for (let i = 0; i < out.count; i++) {
        if (s[i]! < 1e30) continue;
        s[i] = knnScores(memory, out.embeddings.subarray(i * dim, (i + 1) * dim), 1, params.k, (j) => (sampleIndices[j] === out.start + i ? j : -1))[0]!;
      }
      return s;
    };
    close = () => scorer.close();
    summary = { method: 'knn-self', k: params.k, shrinkage: null, fitSamples: n };
  }
  const raw = new Float64Array(total);
  try {
    for await (const out of input.batches()) {
      throwIfAborted(ctx.signal, 'scoring');
      raw.set(await score(out), out.start);
    }
  } finally {
    await close();
  }
  if (scoredOn) ctx.log.info(scoredOn());
  const calibration = fitCalibration(raw, params.calibrationZ);
  const scored = performance.now();
  ctx.progress({ stage: 'score', done: total, total });
  throwIfAborted(ctx.signal, 'aggregate');
  const calibrated = new Float64Array(total);
  for (let i = 0; i < total; i++) calibrated[i] = calibrate(calibration, raw[i]!);
  return { raw, summary: { ...summary, calibration }, calibrated, started, scored };
}

/** Indices of the `m` highest calibrated scores (ties: raw, then index), best first. */
function topIndices(calibrated: Float64Array, raw: Float64Array, m: number): number[] {
  const better = (a: number, b: number) => calibrated[a]! - calibrated[b]! || raw[a]! - raw[b]! || b - a;
  // Threshold by quantile first, then sort only the candidates.
  const n = calibrated.length;
  if (m >= n) return Array.from({ length: n }, (_, i) => i).sort((a, b) => better(b, a));
  const sorted = Float64Array.from(calibrated).sort();
  const cut = sorted[n - m]!;
  const candidates: number[] = [];
  for (let i = 0; i < n; i++) if (calibrated[i]! >= cut) candidates.push(i);
  return candidates.sort((a, b) => better(b, a)).slice(0, m);
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
