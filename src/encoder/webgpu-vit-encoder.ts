/**
 * `WebGpuVitEncoder`: the `Encoder` contract on our own WebGPU kernels (kernels/matmul,
 * layernorm, patch-embed, vit-tokens, flash-attention) for timm-style ViTs — class and register
 * tokens, layer scale, position embeddings resized for larger inputs. Weights come from a Lamina
 * ONNX model (its timm-named initializers) or a timm / Hugging Face safetensors file.
 *
 * Besides `embed` (tiles at the manifest's input size), `embedRegion` runs images of any size that
 * is a multiple of the patch size as one sequence each (a 1,024² region is 4,096 tokens of 16 px),
 * through flash attention, so memory stays linear in tokens. A call of more than `maxBatch` images
 * keeps two forwards in flight (webgpu-vit-model.ts), and so may concurrent calls.
 *
 * @example
 *   const enc = await WebGpuVitEncoder.create('models/lamina-vit-tiny-dino');
 *   const { embeddings } = await enc.embed(pixels, n);
 *   const region = await enc.embedRegion(regionPixels, 1, 1024); // region.tokens: 64×64 grid
 */
import { CancelledError, invalidParameter, UnprocessableError } from '../errors.ts';
import { GpuContext, type GpuContextOptions } from '../../kernels/gpu/gpu-context.ts';
import type { ModelLocation, ModelManifest } from './manifest.ts';
import type { EmbedOptions, EmbedResult, Encoder, EngineTimings } from './types.ts';
import { loadVitWeights, type SafetensorsSourceOptions } from './vit-weight-source.ts';
import { VitGpuModel, type VitForwardResult, type VitModelOptions } from './webgpu-vit-model.ts';
import { normalizeTable } from './normalize.ts';
import type { VitConfig } from './vit-config.ts';

/** Options of {@link WebGpuVitEncoder.create}. */
export interface WebGpuVitEncoderOptions extends VitModelOptions {
  /** An open context to share (not destroyed by `close`); else one is opened with `gpu`. */
  context?: GpuContext;
  /** How to open the context (adapter index, backend). */
  gpu?: GpuContextOptions;
  /** Largest batch sent to one forward; bigger `embed` calls are split. @defaultValue 64 */
  maxBatch?: number;
  /** For safetensors sources: heads, input size, mean/std, mpp. */
  safetensors?: SafetensorsSourceOptions;
}

export class WebGpuVitEncoder implements Encoder {
  readonly device = 'webgpu' as const;
  private closed = false;

  private constructor(
    readonly manifest: ModelManifest, readonly config: VitConfig, readonly model: VitGpuModel,
    private readonly ctx: GpuContext, private readonly ownsContext: boolean, private readonly maxBatch: number,
  ) {}

  /**
   * Loads weights and compiles the kernels.
   * @throws DeviceError when no adapter or device is available; UnprocessableError for weights that are not a plain ViT.
   */
  static async create(source: string | ModelLocation, options: WebGpuVitEncoderOptions = {}): Promise<WebGpuVitEncoder> {
    const maxBatch = options.maxBatch ?? 64;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 4096) throw invalidParameter('maxBatch', 'integer between 1 and 4096', maxBatch);
    const { config, weights, manifest } = await loadVitWeights(source, options.safetensors);
    const ctx = options.context ?? await GpuContext.create(options.gpu);
    try {
      const model = await VitGpuModel.create(ctx, config, weights, options);
      model.setByteInput(normalizeTable(manifest.mean, manifest.std));
      return new WebGpuVitEncoder(manifest, config, model, ctx, !options.context, maxBatch);
    } catch (err) {
      if (!options.context) await ctx.destroy();
      throw err;
    }
  }

  /** Adapter and kernels, for logs. */
  describe(): string {
    return `${this.ctx.describe()}; ${this.model.describeKernels()}`;
  }

  async embed(pixels: Float32Array, n: number, options: EmbedOptions = {}): Promise<EmbedResult> {
    return this.run(pixels, n, this.manifest.inputSize, options);
  }

  /** Tiles as RGB bytes at the input size, normalised on the GPU (same embeddings as `embed`). */
  async embedRgb(rgb: Uint8Array, n: number, options: EmbedOptions = {}): Promise<EmbedResult> {
    return this.run(rgb, n, this.manifest.inputSize, options);
  }

  /**
   * Encodes `n` images of `size` × `size` px (normalised NCHW f32; size a multiple of the patch
   * size) as one sequence each; position embeddings are resized to the grid.
   */
  async embedRegion(pixels: Float32Array, n: number, size: number, options: EmbedOptions = {}): Promise<EmbedResult> {
    return this.run(pixels, n, size, options);
  }

  private async run(pixels: Float32Array | Uint8Array, n: number, size: number, options: EmbedOptions): Promise<EmbedResult> {
    if (this.closed) throw new UnprocessableError(`encoder for ${this.manifest.name} is closed`);
    if (!Number.isInteger(n) || n < 0) throw invalidParameter('n', 'non-negative integer', n);
    const tileLen = 3 * size * size;
    if (pixels.length !== n * tileLen) throw invalidParameter('pixels.length', `${n} × 3 × ${size} × ${size} = ${n * tileLen}`, pixels.length);
    const d = this.config.dim, grid = size / this.config.patchSize, tokenCount = grid * grid;
    const wantTokens = options.tokens === true;
    const embeddings = new Float32Array(n * d);
    const timings: EngineTimings = { upload: 0, gpuWait: 0, readback: 0 };
    // Shared memory, so the in-slide token scorer's worker threads read the tokens without a copy.
    const tokens = wantTokens ? new Float32Array(new SharedArrayBuffer(n * tokenCount * d * 4)) : undefined;
    const add = (r: VitForwardResult) => { timings.upload += r.timings.upload; timings.gpuWait += r.timings.gpuWait; timings.readback += r.timings.readback; };
    // Two sub-batches in flight: sub-batch i+1 is uploaded and submitted before i is awaited, so the
    // GPU computes it while i is read back and decoded. Each decodes into its own rows, so the
    // order of the results does not depend on which resolves first.
    let pending: Promise<VitForwardResult> | undefined;
    try {
      for (let start = 0; start < n; start += this.maxBatch) {
        if (options.signal?.aborted) throw new CancelledError('encoding cancelled', { cause: options.signal.reason });
        const count = Math.min(this.maxBatch, n - start);
        const next = this.model.forward(pixels.subarray(start * tileLen, (start + count) * tileLen), count, size, wantTokens, { embeddings, tokens, image: start });
        next.catch(() => {}); // handled: it is awaited below, or settles in `finally` after a failure
        const prev = pending;
        pending = next;
        if (prev) add(await prev);
      }
      if (pending) {
        const last = pending;
        pending = undefined;
        add(await last);
      }
    } finally {
      // On an abort or a failed sub-batch, the one still in flight settles before this call does.
      await pending?.catch(() => {});
    }
    return tokens ? { embeddings, tokens, tokenGrid: [grid, grid], timings } : { embeddings, timings };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.model.destroy();
    if (this.ownsContext) await this.ctx.destroy();
  }
}
