/**
 * Patch embedding on WebGPU (a stride-P Conv2d over normalised NCHW pixels) as im2col + GEMM:
 * im2col.wgsl lays each P×P×3 patch out as a row, then the matmul kernel multiplies by the conv
 * weight flattened to [3·P·P, D] and adds the bias. Output: [images · (size/P)², D] in ET.
 * @example const pe = await PatchEmbed.create(ctx, { precision: 'f16', patchSize: 16, dim: 768 });
 */
import { readFileSync } from 'node:fs';
import { invalidParameter, InvalidParameterError } from '../../src/errors.ts';
import type { GpuContext } from '../gpu/gpu-context.ts';
import { bindAll, type Dispatch, spreadGroups, uniformWords } from '../dispatch/dispatch.ts';
import { Matmul } from '../matmul/matmul.ts';

export interface PatchEmbedOptions { precision: 'f16' | 'f32'; patchSize: number; dim: number; path?: 'auto' | 'portable' | 'subgroup-matrix' }
export interface PatchEmbedBuffers {
  /**
   * f32 [images, 3, size, size], normalised; or, with `table`, the raw tiles: interleaved RGB
   * bytes [images, size, size, 3] (buffer rounded up to 4 bytes).
   */
  pixels: GPUBuffer;
  /** f32 [3, 256]: the normalised value of each byte per channel, for byte `pixels`. */
  table?: GPUBuffer;
  /** [3·P·P, D] in ET. */
  weight: GPUBuffer;
  bias: GPUBuffer;
  /** Scratch for the patch rows: [images · grid², 3·P·P] in ET. */
  cols: GPUBuffer;
  /** [images · grid², D] in ET. */
  out: GPUBuffer;
}

let template: string | undefined;

const F32_INPUT = {
  INPUT: '@group(0) @binding(1) var<storage, read> pixels: array<f32>;',
  FETCH: '  cols[i] = {{ET}}(pixels[((b * 3u + c) * p.size + y) * p.size + x]);',
};
const RGB8_INPUT = {
  INPUT: '@group(0) @binding(1) var<storage, read> pixels: array<u32>;\n@group(0) @binding(3) var<storage, read> table: array<f32>;',
  FETCH: '  let byteIndex = ((b * p.size + y) * p.size + x) * 3u + c;\n  let v = (pixels[byteIndex / 4u] >> ((byteIndex % 4u) * 8u)) & 255u;\n  cols[i] = {{ET}}(table[c * 256u + v]);',
};

/** Bytes of the im2col scratch for `images` images of `size` px. */
export function im2colBytes(images: number, size: number, patchSize: number, precision: 'f16' | 'f32'): number {
  return images * (size / patchSize) ** 2 * 3 * patchSize * patchSize * (precision === 'f16' ? 2 : 4);
}

export class PatchEmbed {
  private constructor(
    readonly ctx: GpuContext, readonly options: PatchEmbedOptions, private readonly im2col: GPUComputePipeline,
    private readonly im2colRgb8: GPUComputePipeline, readonly matmul: Matmul,
  ) {}

  static async create(ctx: GpuContext, options: PatchEmbedOptions): Promise<PatchEmbed> {
    const { precision, patchSize, dim } = options;
    if (!Number.isInteger(patchSize) || patchSize < 1 || patchSize > 64) throw invalidParameter('patchSize', 'integer 1..64', patchSize);
    template ??= readFileSync(new URL('im2col.wgsl', import.meta.url), 'utf8');
    const fill = (input: { INPUT: string; FETCH: string }) => template!.replace('{{INPUT}}', input.INPUT).replace('{{FETCH}}', input.FETCH)
      .replaceAll('{{ENABLES}}', precision === 'f16' ? 'enable f16;' : '').replaceAll('{{ET}}', precision);
    const [im2col, im2colRgb8, matmul] = await Promise.all([
      ctx.pipeline(`patch-embed/im2col-${precision}`, fill(F32_INPUT)),
      ctx.pipeline(`patch-embed/im2col-rgb8-${precision}`, fill(RGB8_INPUT)),
      Matmul.create(ctx, { precision, N: dim, K: 3 * patchSize * patchSize, path: options.path }),
    ]);
    return new PatchEmbed(ctx, options, im2col, im2colRgb8, matmul);
  }

  /** The two dispatches (im2col, GEMM) for `images` images of `size` px (byte tiles when `b.table` is given). */
  prepare(images: number, size: number, b: PatchEmbedBuffers): Dispatch[] {
    const P = this.options.patchSize;
    if (!Number.isInteger(size) || size < P || size % P) throw invalidParameter('size', `positive multiple of the patch size ${P}`, size);
    if (!Number.isInteger(images) || images < 1) throw invalidParameter('images', 'positive integer', images);
    const grid = size / P, K = 3 * P * P, rows = images * grid * grid, total = rows * K;
    if (total >= 2 ** 32) throw new InvalidParameterError(`patch embedding of ${images} images of ${size} px is too large for one call`);
    if (b.pixels.size < images * 3 * size * size * (b.table ? 1 : 4)) throw new InvalidParameterError('patch-embed pixels: buffer too small');
    if (b.cols.size < im2colBytes(images, size, P, this.options.precision)) throw new InvalidParameterError('patch-embed cols: buffer too small');
    const [gx, gy] = spreadGroups(Math.ceil(total / 256), this.ctx.device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = uniformWords(this.ctx.device, [size, P, grid, K, total, gx, 0, 0]);
    const pipeline = b.table ? this.im2colRgb8 : this.im2col;
    const im2col: Dispatch = { label: 'im2col', pipeline, bindGroup: bindAll(this.ctx.device, pipeline, uniform, b.table ? [b.pixels, b.cols, b.table] : [b.pixels, b.cols]), groups: [gx, gy, 1], uniform };
    return [im2col, this.matmul.prepare({ M: rows, N: this.options.dim, K }, { x: b.cols, w: b.weight, bias: b.bias, out: b.out })];
  }

  destroy(): void { this.matmul.destroy(); }
}

/** Conv2d weight [D, 3, P, P] → the GEMM's [3·P·P, D]. */
export function convWeightToGemm(weight: Float32Array, dim: number, patchSize: number): Float32Array {
  const K = 3 * patchSize * patchSize;
  const out = new Float32Array(K * dim);
  for (let o = 0; o < dim; o++) for (let k = 0; k < K; k++) out[k * dim + o] = weight[o * K + k]!;
  return out;
}
