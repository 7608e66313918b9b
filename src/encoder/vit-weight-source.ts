/**
 * Where the WebGPU ViT engine gets its weights: a Lamina model (folder, manifest or .onnx written
 * by `buildVitOnnx`, whose initializers keep timm names — read back by `readVitOnnx`) or a timm /
 * Hugging Face ViT safetensors file (UNI, Phikon, … exported weights), whose config is inferred
 * from the tensors as `lamina model import` does.
 */
import { basename } from 'node:path';
import { parseManifest, locateModel, type ModelLocation, type ModelManifest } from './manifest.ts';
import { readVitOnnx } from './onnx-weights.ts';
import { readSafetensors } from './safetensors.ts';
import { detectNaming, toTimmNames } from './hf-names.ts';
import { inferVitConfig, stripWrapperPrefix, type InferVitOptions } from './timm-import.ts';
import { vitManifestFields } from './model-store.ts';
import type { VitConfig, VitWeights } from './vit-config.ts';

export interface LoadedVit { config: VitConfig; weights: VitWeights; manifest: ModelManifest }

/** Options for safetensors sources (ONNX models carry their own manifest). */
export interface SafetensorsSourceOptions extends InferVitOptions {
  mean?: [number, number, number];
  std?: [number, number, number];
  mpp?: number;
}

/**
 * Reads weights, config and manifest from a model location, a model path, or a `.safetensors` file.
 * @throws NotFoundError / UnprocessableError as `locateModel`, `readVitOnnx` and `inferVitConfig` do.
 */
export async function loadVitWeights(source: string | ModelLocation, options: SafetensorsSourceOptions = {}): Promise<LoadedVit> {
  if (typeof source === 'string' && /\.safetensors$/i.test(source)) {
    const { tensors, metadata } = await readSafetensors(source);
    const stripped = stripWrapperPrefix(tensors);
    const naming = detectNaming(stripped);
    const weights = toTimmNames(stripped, source);
    const config = inferVitConfig(weights, { layerNormEps: naming === 'hf-vit' ? 1e-12 : 1e-6, ...options }, source);
    for (const name of [...weights.keys()]) if (/^(head|fc_norm|head_drop|attn_pool|mask_token)/.test(name)) weights.delete(name);
    const manifest = parseManifest({
      format: 'lamina-model', formatVersion: 1, ...vitManifestFields(config), file: basename(source),
      name: metadata['lamina.name'] ?? basename(source).replace(/\.safetensors$/i, ''),
      mean: options.mean ?? [0.485, 0.456, 0.406], std: options.std ?? [0.229, 0.224, 0.225], mpp: options.mpp ?? 0.5,
      trained: metadata['lamina.trained'] !== 'false',
    }, source);
    return { config, weights, manifest };
  }
  const location = typeof source === 'string' ? await locateModel(source) : source;
  const { config, weights } = await readVitOnnx(location.onnxPath);
  return { config, weights, manifest: location.manifest };
}
