import type { ModelManifest } from './manifest.ts';

export type { ModelManifest } from './manifest.ts';

/** Where an encoder runs. `cpu` is onnxruntime's CPU EP; `webgpu`/`cuda` are onnxruntime EPs or our own engine. */
export type EncoderDevice = 'cpu' | 'webgpu' | 'cuda';

/** Per-call options of {@link Encoder.embed}. */
export interface EmbedOptions {
  /** Also return per-patch-token features (when the model has them). @defaultValue false */
  tokens?: boolean;
  /** Checked before the batch runs; an aborted signal throws CancelledError. */
  signal?: AbortSignal;
}

/** Output of one {@link Encoder.embed} call, all row-major float32. */
export interface EmbedResult {
  /** `n × embeddingDim`: the pooled (class-token, final-norm) embedding per tile. */
  embeddings: Float32Array;
  /** `n × tokenCount × embeddingDim` patch-token features, present when asked for and available. */
  tokens?: Float32Array;
  /** Patch-token grid `[rows, cols]` (row-major over the tile), with `tokens`. */
  tokenGrid?: [number, number];
  /** Where the call's time went, from engines that measure it (the WebGPU engine). */
  timings?: EngineTimings;
}

/**
 * Milliseconds of one `embed` call by kind: host work before the GPU (upload, command recording),
 * waiting for the GPU's results, and host work after (decoding them into the result arrays).
 */
export interface EngineTimings {
  upload: number;
  gpuWait: number;
  readback: number;
}

/**
 * The encoder contract every engine implements (`OrtEncoder` on onnxruntime-node, later a
 * `WebGpuVitEncoder` on our own kernels). Input is what `preprocessTiles` produces: `n` tiles as
 * NCHW float32, normalised with the manifest's mean/std, `n × 3 × inputSize × inputSize`.
 * Engines may split a large batch internally; results keep tile order.
 */
export interface Encoder {
  readonly manifest: ModelManifest;
  /** Device actually in use (after any fallback the caller asked for). */
  readonly device: EncoderDevice;
  embed(pixels: Float32Array, n: number, options?: EmbedOptions): Promise<EmbedResult>;
  /**
   * `n` square images of `size` px (any multiple of the patch size), each encoded as one token
   * sequence with the position grid resized (native-resolution regions); engines that have it.
   */
  embedRegion?(pixels: Float32Array, n: number, size: number, options?: EmbedOptions): Promise<EmbedResult>;
  /**
   * `n` tiles already at the input size as interleaved RGB bytes (`n × inputSize × inputSize × 3`),
   * normalised by the engine exactly as `preprocessTiles` would (same embeddings as `embed` of its
   * output), for engines that can take bytes: a quarter of the upload and no host pass per pixel.
   */
  embedRgb?(rgb: Uint8Array, n: number, options?: EmbedOptions): Promise<EmbedResult>;
  /** Releases native resources; safe to call twice. */
  close(): Promise<void>;
}
