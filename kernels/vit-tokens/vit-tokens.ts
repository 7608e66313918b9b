/**
 * Token assembly on WebGPU: class and register tokens, then the embedded patches, plus the
 * position table (see pos-embed.ts), into the residual stream [images · seq, D].
 */
import { readFileSync } from 'node:fs';
import { invalidParameter, InvalidParameterError } from '../../src/errors.ts';
import type { GpuContext } from '../gpu/gpu-context.ts';
import { bindAll, type Dispatch, spreadGroups, uniformWords } from '../dispatch/dispatch.ts';

export interface VitTokensShape { images: number; seq: number; prefix: number; D: number }
export interface VitTokensBuffers { patches: GPUBuffer; prefixTokens: GPUBuffer; pos: GPUBuffer; out: GPUBuffer }

let template: string | undefined;

export class VitTokens {
  private constructor(readonly ctx: GpuContext, readonly precision: 'f16' | 'f32', private readonly pipeline: GPUComputePipeline) {}

  static async create(ctx: GpuContext, precision: 'f16' | 'f32'): Promise<VitTokens> {
    template ??= readFileSync(new URL('vit-tokens.wgsl', import.meta.url), 'utf8');
    const code = template.replaceAll('{{ENABLES}}', precision === 'f16' ? 'enable f16;' : '').replaceAll('{{ET}}', precision);
    return new VitTokens(ctx, precision, await ctx.pipeline(`vit-tokens/${precision}`, code));
  }

  prepare(s: VitTokensShape, b: VitTokensBuffers): Dispatch {
    for (const [k, v] of Object.entries(s)) if (!Number.isInteger(v) || v < (k === 'prefix' ? 0 : 1)) throw invalidParameter(k, 'positive integer', v);
    if (s.prefix >= s.seq) throw invalidParameter('prefix', `< seq (${s.seq})`, s.prefix);
    const total = s.images * s.seq * s.D;
    const e = this.precision === 'f16' ? 2 : 4;
    if (total >= 2 ** 32 || b.out.size < total * e || b.pos.size < s.seq * s.D * e || b.patches.size < s.images * (s.seq - s.prefix) * s.D * e) {
      throw new InvalidParameterError(`vit-tokens: buffers too small or call too large for ${JSON.stringify(s)}`);
    }
    const [gx, gy] = spreadGroups(Math.ceil(total / 256), this.ctx.device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = uniformWords(this.ctx.device, [s.seq, s.prefix, s.D, total, gx, 0, 0, 0]);
    return { label: 'vit-tokens', pipeline: this.pipeline, bindGroup: bindAll(this.ctx.device, this.pipeline, uniform, [b.patches, b.prefixTokens, b.pos, b.out]), groups: [gx, gy, 1], uniform };
  }
}
