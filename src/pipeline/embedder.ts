/**
 * The pipeline's view of an encoder: RGB tiles in, one embedding per tile out. Wraps the
 * `Encoder` of src/encoder (NCHW float input) with its sharp pre-processing, so stages never see
 * tensors.
 */
import type { RgbImage } from '../readers/types.ts';
import type { EngineTimings } from '../encoder/types.ts';

/** What results and banks record about the model. */
export interface ModelInfo {
  name: string;
  /** False for the built-in fixed-seed encoders (random features). */
  trained: boolean;
  embeddingSize: number;
  /** Input side in pixels and expected µm/px, from the manifest. */
  inputSize: number;
  mpp: number | null;
  /** The manifest's one-line `summary` for users (what the model is, how far to trust it), when it has one. */
  summary?: string;
}

/** RGB tiles → embeddings (`n × embeddingSize`, row-major). */
export interface TileEmbedder {
  readonly model: ModelInfo;
  /** Execution provider in use. */
  readonly device: string;
  embed(tiles: RgbImage[], signal?: AbortSignal): Promise<Float32Array>;
  /** Embeddings and patch tokens (`n × tokensPerTile × embeddingSize`), where the model has them. */
  embedTokens?(tiles: RgbImage[], signal?: AbortSignal): Promise<{ embeddings: Float32Array; tokens: Float32Array; tokensPerTile: number; timings?: EmbedTimings }>;
  /**
   * Native-resolution regions: square RGB regions (one size, a multiple of the patch size) →
   * per-patch token features (`n × grid² × embeddingSize`), where the engine has `embedRegion`.
   */
  embedRegions?(regions: RgbImage[], signal?: AbortSignal): Promise<{ tokens: Float32Array; grid: number }>;
  close(): Promise<void>;
}

/** Milliseconds of one embedding call: resize + normalise, then the engine's own split when it has one. */
export interface EmbedTimings extends Partial<EngineTimings> {
  preprocess: number;
}
