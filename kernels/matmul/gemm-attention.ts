/**
 * Attention for short sequences as two batched GEMMs and a row softmax, with the S×S scores
 * materialised per (image, head): S = Q·Kᵀ (f32), P = softmax(scale·S), O = P·V. At ViT tile
 * length (197 tokens) the scores of a batch of 64 are 64·12·197·200·(4 + 2) B = 182 MB, and the two
 * products run on the GEMM kernel's tensor-core path, where our flash-attention kernel's fast path
 * is not available. Memory grows with seq², so callers keep it for short sequences
 * ({@link GEMM_ATTENTION_MAX_SEQ}) and use flash attention beyond.
 *
 * Input is the packed QKV projection output of a ViT block: [images·seq, 3·heads·headDim] rows
 * holding q, k, v of every head; output [images·seq, heads·headDim].
 *
 * @example
 *   const ga = await GemmAttention.create(ctx, { headDim: 64, precision: 'f16' });
 *   const plan = ga.plan({ images: 64, heads: 12, seq: 197 }, qkv, att);
 *   plan.dispatches.forEach((d) => recordDispatch(pass, d)); // then plan.destroy()
 */
import { readFileSync } from 'node:fs';
import { invalidParameter, InvalidParameterError } from '../../src/errors.ts';
import type { GpuContext } from '../gpu/gpu-context.ts';
import { bindAll, destroyDispatch, spreadGroups, uniformWords, type Dispatch } from '../dispatch/dispatch.ts';
import { Matmul } from './matmul.ts';

/**
 * Tiling of both products: single-buffered, since at K = 64 (Q·Kᵀ) and K = 200 (P·V) there are
 * only 2–7 K steps to overlap. The H200 call of 2026-11-29 agreed (0.86 vs 4.2 ms per call over
 * 64×12 heads of 197 tokens) but timed by wall clock, which that call showed to be noisy (NOTES.md).
 */
export const GEMM_ATTENTION_SPEC = '128x128x32-sg4x2-s1';

/** Longest sequence the ViT engine sends through this path by default (beyond: flash attention). */
export const GEMM_ATTENTION_MAX_SEQ = 1024;

export interface GemmAttentionOptions {
  headDim: number;
  precision: 'f16' | 'f32';
  /** GEMM path. @defaultValue 'auto' */
  path?: 'auto' | 'portable' | 'subgroup-matrix';
  /** Subgroup-matrix tiling of both products (matmul.ts). @defaultValue GEMM_ATTENTION_SPEC */
  spec?: string;
}

export interface GemmAttentionShape { images: number; heads: number; seq: number }

export interface GemmAttentionPlan {
  dispatches: Dispatch[];
  /** Scores and probabilities; freed by `destroy`. */
  buffers: GPUBuffer[];
  destroy(): void;
}

/** Padded score row length: a multiple of 8 so rows of P stay 16-byte aligned as GEMM input. */
export function paddedSeq(seq: number): number {
  return Math.ceil(seq / 8) * 8;
}

/** Bytes of the scores (f32) and probabilities for one call. */
export function gemmAttentionBytes(shape: GemmAttentionShape, precision: 'f16' | 'f32'): number {
  const cells = shape.images * shape.heads * shape.seq * paddedSeq(shape.seq);
  return cells * (4 + (precision === 'f16' ? 2 : 4));
}

let softmaxTemplate: string | undefined;

export class GemmAttention {
  private readonly zeros: GPUBuffer;

  private constructor(
    readonly ctx: GpuContext, readonly options: GemmAttentionOptions,
    private readonly qk: Matmul, private readonly pv: Matmul, private readonly softmax: GPUComputePipeline,
  ) {
    const n = Math.max(options.headDim, 4096);
    this.zeros = ctx.device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE, label: 'gemm-attention-zero-bias' });
  }

  static async create(ctx: GpuContext, options: GemmAttentionOptions): Promise<GemmAttention> {
    const { headDim, precision } = options;
    if (!Number.isInteger(headDim) || headDim < 8 || headDim % 8) throw invalidParameter('headDim', 'positive multiple of 8', headDim);
    if (precision !== 'f16' && precision !== 'f32') throw invalidParameter('precision', "'f16' or 'f32'", precision);
    softmaxTemplate ??= readFileSync(new URL('softmax-rows.wgsl', import.meta.url), 'utf8');
    const wgsl = softmaxTemplate.replace('{{ENABLES}}', precision === 'f16' ? 'enable f16;' : '').replaceAll('{{ET}}', precision);
    const path = options.path ?? 'auto';
    // N of Q·Kᵀ is the sequence: unknown here, and the transposed operand needs no N % 8.
    const [qk, pv, softmax] = await Promise.all([
      Matmul.create(ctx, { precision, N: 8, K: headDim, transposeW: true, outF32: true, path, spec: options.spec ?? GEMM_ATTENTION_SPEC }),
      Matmul.create(ctx, { precision, N: headDim, K: 8, path, spec: options.spec ?? GEMM_ATTENTION_SPEC }),
      ctx.pipeline(`softmax-rows-${precision}`, wgsl),
    ]);
    return new GemmAttention(ctx, options, qk, pv, softmax);
  }

  get name(): string { return `gemm-attention(${this.qk.name}, ${this.pv.name})`; }

  /** True when both products run on the tensor-core path. */
  get tensorCores(): boolean { return this.qk.variant.path === 'subgroup-matrix' && this.pv.variant.path === 'subgroup-matrix'; }

  /**
   * Dispatches for one call (record them in order in one compute pass); `qkv` and `out` as in the
   * module comment. `scale` @defaultValue 1 / √headDim
   */
  plan(shape: GemmAttentionShape, qkv: GPUBuffer, out: GPUBuffer, scale = 1 / Math.sqrt(this.options.headDim)): GemmAttentionPlan {
    const { images, heads, seq } = shape;
    for (const [k, v] of Object.entries(shape)) if (!Number.isInteger(v) || v < 1) throw invalidParameter(k, 'positive integer', v);
    if (qkv === out) throw new InvalidParameterError('attention output must not share the QKV buffer');
    if (seq > 4096) throw invalidParameter('seq', 'at most 4096 (scores are materialised; use flash attention)', seq);
    const hd = this.options.headDim, D = heads * hd, sp = paddedSeq(seq);
    const e = this.options.precision === 'f16' ? 2 : 4;
    const dev = this.ctx.device;
    const cells = images * heads * seq * sp;
    const s = dev.createBuffer({ size: Math.max(16, cells * 4), usage: GPUBufferUsage.STORAGE, label: 'attention-scores' });
    const p = dev.createBuffer({ size: Math.max(16, Math.ceil(cells * e / 16) * 16), usage: GPUBufferUsage.STORAGE, label: 'attention-probs' });
    const dispatches: Dispatch[] = [];
    try {
      const batch = images * heads;
      // S[z] = Q[z]·K[z]ᵀ: Q rows of image i, head j at i·seq·3D + j·hd; K the same + D.
      dispatches.push(this.qk.prepareBatched({
        M: seq, N: seq, K: hd, batch, heads,
        x: { ld: 3 * D, i: seq * 3 * D, j: hd }, w: { ld: 3 * D, i: seq * 3 * D, j: hd, offset: D },
        y: { ld: sp, i: heads * seq * sp, j: seq * sp },
      }, { x: qkv, w: qkv, bias: this.zeros, out: s }));
      const rows = batch * seq;
      const [gx, gy] = spreadGroups(rows, dev.limits.maxComputeWorkgroupsPerDimension);
      const uniform = uniformWords(dev, [rows, seq, sp, gx, scale, 0, 0, 0], new Set([4]));
      dispatches.push({ label: 'softmax-rows', pipeline: this.softmax, bindGroup: bindAll(dev, this.softmax, uniform, [s, p]), groups: [gx, gy, 1], uniform });
      // O[z] = P[z]·V[z]: K = sp with V rows past seq read as zeros (kw), P's pad columns are zeros.
      dispatches.push(this.pv.prepareBatched({
        M: seq, N: hd, K: sp, kw: seq, batch, heads,
        x: { ld: sp, i: heads * seq * sp, j: seq * sp }, w: { ld: 3 * D, i: seq * 3 * D, j: hd, offset: 2 * D },
        y: { ld: D, i: seq * D, j: hd },
      }, { x: p, w: qkv, bias: this.zeros, out }));
    } catch (err) {
      dispatches.forEach(destroyDispatch);
      s.destroy(); p.destroy();
      throw err;
    }
    return {
      dispatches, buffers: [s, p],
      destroy: () => { dispatches.forEach(destroyDispatch); s.destroy(); p.destroy(); },
    };
  }

  destroy(): void {
    this.qk.destroy();
    this.pv.destroy();
    this.zeros.destroy();
  }
}
