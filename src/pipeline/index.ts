/**
 * The analysis stages, for the CLI and the queue workers. A worker runs:
 *
 *   planAnalysis({ slide }, params, ctx)                  → { plan }              (once per slide; plan is JSON)
 *   batchRanges(plan, params.batchSize)                   → TileRange[]           (one child job each)
 *   processBatch({ slide, plan, range, embedder, bank })  → BatchOutput           (store encodeBatchOutput(out) atomically per range)
 *   finishAnalysis({ plan, model, bank, bankName, batches, outDir, input, timings }) → AnalysisResult (once, after all batches)
 *
 * `params` always comes from `parseAnalysisParams` (pipelines/anomaly.ts); `bank` from
 * `loadReference(params, embedder)`; `embedder` from `openEmbedder(params.model, params.engine)`.
 */
export { parseAnalysisParams, analysisDefaults, anomalyPipeline, type AnalysisParams, type AnalysisParamsInput } from '../../pipelines/anomaly.ts';
export { planAnalysis, type PlannedAnalysis } from './plan.ts';
export { batchRanges, processBatch, scoresInBatch, encodeBatchOutput, decodeBatchOutput, type BatchInput, type BatchOutput, type TileRange } from './batch.ts';
export { finishAnalysis, type FinishInput } from './finish.ts';
export { analyzeSlide, loadReference, type AnalyzeOptions } from './analyze.ts';
export { fitReference } from './fit-reference.ts';
export { openEmbedder, encoderEmbedder } from './open-embedder.ts';
export { checksumInput } from './checksum.ts';
export { OUTPUT_FILES, prepareOutputDir, removeOutputs } from './output.ts';
export { quietContext, throwIfAborted, type Stage, type StageContext, type StageProgress, type StageLogger } from './stage.ts';
export type { TileEmbedder, ModelInfo } from './embedder.ts';
export type { AnalysisResult } from './result.ts';
export type { TilePlan, PlannedTile } from '../tiling/tile-plan.ts';
