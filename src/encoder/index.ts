/**
 * The encoder stage's public surface. Other stages import from here:
 * `loadEncoder(ref, options)` → an `Encoder`; `preprocessTiles(tiles, manifest, { srcMpp })` → its input.
 */
import { DEFAULT_MODEL_NAME } from './builtin-models.ts';
import { resolveModel } from './model-store.ts';
import { OrtEncoder, type OrtEncoderOptions } from './ort-encoder.ts';

export type { EmbedOptions, EmbedResult, Encoder, EncoderDevice } from './types.ts';
export type { ModelManifest, ModelLocation } from './manifest.ts';
export { locateModel, tokenGridSide } from './manifest.ts';
export { OrtEncoder, type OrtEncoderOptions } from './ort-encoder.ts';
export { preprocessTiles, sourceTileSize, type PreprocessOptions } from './preprocess.ts';
export { resolveModel, modelCacheDir, buildBuiltinModel } from './model-store.ts';
export { BUILTIN_MODELS, DEFAULT_BUILTIN_MODEL, DEFAULT_MODEL_NAME } from './builtin-models.ts';

/**
 * Opens a model by path or name (see `resolveModel`) on onnxruntime-node; built-in models are
 * generated into the model cache on first use.
 * @defaultValue ref = DEFAULT_MODEL_NAME (the trained 'lamina-vit-tiny-dino' in models/)
 * @example const enc = await loadEncoder('untrained-test-tiny', { threads: 1 });
 */
export async function loadEncoder(ref: string = DEFAULT_MODEL_NAME, options: OrtEncoderOptions = {}): Promise<OrtEncoder> {
  return OrtEncoder.create(await resolveModel(ref), options);
}

/** The default encoder (`DEFAULT_MODEL_NAME`: the trained 'lamina-vit-tiny-dino'). */
export function loadDefaultEncoder(options: OrtEncoderOptions = {}): Promise<OrtEncoder> {
  return loadEncoder(DEFAULT_MODEL_NAME, options);
}
