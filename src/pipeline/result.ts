/**
 * The shape of result.json. Every field except `timings` is deterministic for a slide and its
 * parameters.
 */
import type { AnalysisParams } from '../../pipelines/anomaly.ts';
import type { Mpp } from '../readers/types.ts';
import type { ScorerSummary } from './slide-scorer.ts';
import type { ModelInfo } from './embedder.ts';
import type { OUTPUT_FILES } from './output.ts';

export interface AnalysisResult {
  format: 'lamina-analysis-result';
  version: 1;
  software: { name: 'lamina'; version: string };
  input: { name: string; sha256: string; bytes: number; format: string; width: number; height: number; mpp: Mpp | null; objectivePower: number | null };
  /**
   * The encoder and what a reader should know about it: `note` is the manifest's `summary` for a
   * trained model, the UNTRAINED note for random-weight encoders (`trained: false`).
   */
  model: Omit<ModelInfo, 'summary'> & { note?: string };
  parameters: AnalysisParams;
  scorer: ScorerSummary & { reference: { file: string | null; model: string; entries: number; sources: string[] } | null };
  /** 0..1: mean calibrated score of the top 1% of tiles. */
  slideScore: number;
  slideScoreDefinition: string;
  tiles: {
    analysed: number;
    aboveThreshold: number;
    level: number;
    levelDownsample: number;
    analysisDownsample: number;
    analysisMpp: number | null;
    tileSizePx: number;
    tileSizeLevel0: number;
    strideLevel0: number;
    storedTile: { width: number; height: number; aligned: boolean };
    tissue: { levelIndex: number; downsample: number; fraction: number; thresholds: { saturation: number; opticalDensity: number } };
  };
  /** scores.f32: rows × cols float32 LE, NaN = no tissue tile; cell (c, r) covers level-0 [c·cell, (c+1)·cell). */
  grid: { cols: number; rows: number; cellSizeLevel0: number; file: string; dtype: 'float32-le'; noData: 'NaN' };
  topTiles: { index: number; x: number; y: number; width: number; height: number; score: number; rawScore: number }[];
  /** Polygons are in regions.geojson (feature ids equal these ids). */
  regions: { id: string; index: number; tiles: number; area: number; bbox: { x: number; y: number; width: number; height: number }; maxScore: number; meanScore: number }[];
  files: typeof OUTPUT_FILES;
  /** Milliseconds by stage (checksum, tissue, plan, encode, score, aggregate) and their total. */
  timings: Record<string, number>;
}
