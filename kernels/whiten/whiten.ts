/**
 * Mahalanobis distances |W (x − μ)| of many rows on WebGPU (whiten.wgsl), the GPU twin of
 * `mahalanobisScores` (src/scoring/mahalanobis.ts): W (the model's lower-triangular whitening) and
 * μ are uploaded once, rows go in batches. f32 throughout; distances agree with the CPU to ~1e-5
 * relative.
 * @example
 *   const norms = await WhitenedNorms.create(ctx, { dim, padded, whiten, mean });
 *   const distances = await norms.distances(rows, n);
 */
import { readFileSync } from 'node:fs';
import { invalidParameter } from '../../src/errors.ts';
import type { GpuContext } from '../gpu/gpu-context.ts';
import { uniformWords } from '../dispatch/dispatch.ts';

/** W's padding on the device: the kernel's output and K tiles never read past it. */
const TILE = 64;
/** Rows per dispatch: 256 MiB of f32 input at dim 1,024. */
const BATCH_ROWS = 65536;

export interface Whitening {
  dim: number;
  /** Row length of `whiten` (≥ dim). */
  padded: number;
  /** [padded, padded] row-major, lower-triangular, zeros beyond `dim`. */
  whiten: Float32Array;
  mean: ArrayLike<number>;
}

let template: string | undefined;

export class WhitenedNorms {
  private constructor(readonly ctx: GpuContext, readonly dim: number, private readonly dp: number,
    private readonly w: GPUBuffer, private readonly mu: GPUBuffer, private readonly pipe: GPUComputePipeline) {}

  /** Uploads W and μ (repacked to a multiple of 64) and compiles the kernel. */
  static async create(ctx: GpuContext, model: Whitening): Promise<WhitenedNorms> {
    const { dim, padded, whiten, mean } = model;
    if (!Number.isInteger(dim) || dim < 1 || padded < dim || whiten.length !== padded * padded || mean.length !== dim) {
      throw invalidParameter('whitening', `dim ≥ 1, [padded ≥ dim]² matrix and dim means`, `${dim}, ${padded}, ${whiten.length}, ${mean.length}`);
    }
    const dp = Math.ceil(dim / TILE) * TILE;
    const w = new Float32Array(dp * dp);
    for (let i = 0; i < dim; i++) w.set(whiten.subarray(i * padded, i * padded + dim), i * dp);
    const mu = new Float32Array(dp);
    for (let d = 0; d < dim; d++) mu[d] = mean[d]!;
    template ??= readFileSync(new URL('whiten.wgsl', import.meta.url), 'utf8');
    const code = template.replaceAll('{{OPAQUE}}', ctx.capabilities.cpu ? '1' : '0');
    const pipe = await ctx.pipeline(`whiten/norms-${ctx.capabilities.cpu}`, code, 'whiten_norms');
    return new WhitenedNorms(ctx, dim, dp, ctx.upload(w, GPUBufferUsage.STORAGE, 'whiten-w'), ctx.upload(mu, GPUBufferUsage.STORAGE, 'whiten-mean'), pipe);
  }

  /** Distances of `n` rows ([n, dim] f32). */
  async distances(rows: Float32Array, n: number): Promise<Float64Array> {
    if (rows.length < n * this.dim) throw invalidParameter('rows.length', `${n} × ${this.dim}`, rows.length);
    const out = new Float64Array(n);
    for (let s = 0; s < n; s += BATCH_ROWS) {
      const c = Math.min(BATCH_ROWS, n - s);
      out.set(await this.runBatch(rows.subarray(s * this.dim, (s + c) * this.dim), c), s);
    }
    return out;
  }

  private async runBatch(rows: Float32Array, n: number): Promise<Float32Array> {
    const dev = this.ctx.device;
    const uniform = uniformWords(dev, [n, this.dim, this.dp, 0]);
    const x = this.ctx.upload(rows, GPUBufferUsage.STORAGE, 'whiten-rows');
    const dist = dev.createBuffer({ size: Math.max(16, n * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, label: 'whiten-dist' });
    try {
      const enc = dev.createCommandEncoder({ label: 'whiten' });
      const pass = enc.beginComputePass();
      pass.setPipeline(this.pipe);
      pass.setBindGroup(0, dev.createBindGroup({
        layout: this.pipe.getBindGroupLayout(0),
        entries: [uniform, x, this.mu, this.w, dist].map((buffer, binding) => ({ binding, resource: { buffer } })),
      }));
      const groups = Math.ceil(n / TILE);
      pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535));
      pass.end();
      dev.queue.submit([enc.finish()]);
      return new Float32Array(await this.ctx.read(dist, 0, n * 4));
    } finally {
      for (const b of [uniform, x, dist]) b.destroy();
    }
  }

  destroy(): void { this.w.destroy(); this.mu.destroy(); }
}
