/**
 * One place that turns an engine choice into an `Encoder`: `ort` is `OrtEncoder` on an
 * onnxruntime execution provider; `webgpu` is our `WebGpuVitEncoder` (kernels/ on Dawn) when an
 * adapter exists, else — with a logged warning — `OrtEncoder` on the CPU. Models the WebGPU engine
 * cannot run (ONNX files not written by Lamina's ViT builder) also fall back to ORT, with a warning.
 * The WebGPU engine is imported lazily, so ORT-only processes never load Dawn.
 *
 * @example const enc = await createEncoder('untrained-vit-s16', { engine: 'webgpu' });
 */
import { DeviceError, invalidParameter, UnprocessableError } from '../errors.ts';
import type { GpuContextOptions } from '../../kernels/gpu/gpu-context.ts';
import { resolveModel } from './model-store.ts';
import type { ModelLocation } from './manifest.ts';
import { OrtEncoder } from './ort-encoder.ts';
import type { Encoder, EncoderDevice } from './types.ts';

export type EncoderEngine = 'ort' | 'webgpu';

export interface CreateEncoderOptions {
  /** @defaultValue 'ort' */
  engine?: EncoderEngine;
  /** onnxruntime execution provider for engine 'ort'. @defaultValue 'cpu' */
  ep?: EncoderDevice;
  /** ORT intra-op threads (0: ORT's choice). @defaultValue 0 */
  threads?: number;
  /** Adapter choice for engine 'webgpu'. */
  gpu?: GpuContextOptions;
  /** Largest batch per forward. @defaultValue 64 */
  maxBatch?: number;
  /** Where fallback warnings go. @defaultValue console.warn */
  warn?: (message: string) => void;
}

/**
 * Opens `model` (a built-in name, a model path or a located model; `.safetensors` for webgpu) on
 * the chosen engine.
 * @throws InvalidParameterError for an unknown engine; the errors of `OrtEncoder.create` otherwise.
 */
export async function createEncoder(model: string | ModelLocation, options: CreateEncoderOptions = {}): Promise<Encoder> {
  const engine = options.engine ?? 'ort';
  const warn = options.warn ?? ((m: string) => console.warn(m));
  const maxBatch = options.maxBatch ?? 64;
  if (engine !== 'ort' && engine !== 'webgpu') throw invalidParameter('engine', "'ort' or 'webgpu'", engine);
  const isSafetensors = typeof model === 'string' && /\.safetensors$/i.test(model);
  if (engine === 'webgpu') {
    try {
      const { WebGpuVitEncoder } = await import('./webgpu-vit-encoder.ts');
      const source = isSafetensors ? model : typeof model === 'string' ? await resolveModel(model) : model;
      return await WebGpuVitEncoder.create(source, { gpu: options.gpu, maxBatch });
    } catch (err) {
      if (!(err instanceof DeviceError) && !(err instanceof UnprocessableError)) throw err;
      if (isSafetensors) throw err;
      warn(`lamina: WebGPU engine unavailable (${(err as Error).message}); falling back to onnxruntime on the CPU`);
      return OrtEncoder.create(typeof model === 'string' ? await resolveModel(model) : model, { device: 'cpu', threads: options.threads, maxBatch });
    }
  }
  if (isSafetensors) throw new UnprocessableError(`${model}: onnxruntime needs an ONNX model; import the safetensors first (lamina model import) or use --engine webgpu`);
  return OrtEncoder.create(typeof model === 'string' ? await resolveModel(model) : model, { device: options.ep ?? 'cpu', threads: options.threads, maxBatch });
}
