/**
 * LayerNorm on WebGPU: y[r] = (x[r·step] − mean) / √(var + eps) · gamma + beta over rows of D,
 * f16 or f32 storage, f32 sums. `step` > 1 normalises every step-th row only (the class tokens
 * of a batch of sequences), written densely.
 * @example const d = (await LayerNorm.create(ctx, 'f16')).prepare({ rows: 197, D: 768, eps: 1e-6 }, { x, gamma, beta, out });
 */
import { readFileSync } from 'node:fs';
import { invalidParameter, InvalidParameterError } from '../../src/errors.ts';
import type { GpuContext } from '../gpu/gpu-context.ts';
import { bindAll, type Dispatch, spreadGroups, uniformWords } from '../dispatch/dispatch.ts';

export interface LayerNormShape { rows: number; D: number; eps: number; /** @defaultValue 1 */ step?: number }
export interface LayerNormBuffers { x: GPUBuffer; gamma: GPUBuffer; beta: GPUBuffer; out: GPUBuffer }

let template: string | undefined;

export class LayerNorm {
  private constructor(readonly ctx: GpuContext, readonly precision: 'f16' | 'f32', private readonly pipeline: GPUComputePipeline) {}

  static async create(ctx: GpuContext, precision: 'f16' | 'f32'): Promise<LayerNorm> {
    if (precision === 'f16' && !ctx.capabilities.shaderF16) throw new InvalidParameterError('f16 LayerNorm needs the shader-f16 feature');
    template ??= readFileSync(new URL('layernorm.wgsl', import.meta.url), 'utf8');
    const code = template.replaceAll('{{ENABLES}}', precision === 'f16' ? 'enable f16;' : '').replaceAll('{{ET}}', precision);
    return new LayerNorm(ctx, precision, await ctx.pipeline(`layernorm/${precision}`, code));
  }

  prepare(shape: LayerNormShape, b: LayerNormBuffers): Dispatch {
    const step = shape.step ?? 1;
    for (const [k, v] of Object.entries({ rows: shape.rows, D: shape.D, step })) if (!Number.isInteger(v) || v < 1) throw invalidParameter(k, 'positive integer', v);
    if (!(shape.eps > 0)) throw invalidParameter('eps', 'positive number', shape.eps);
    const e = this.precision === 'f16' ? 2 : 4;
    if (b.x.size < ((shape.rows - 1) * step + 1) * shape.D * e) throw new InvalidParameterError(`layernorm x: buffer of ${b.x.size} bytes too small`);
    if (b.out.size < shape.rows * shape.D * e) throw new InvalidParameterError(`layernorm out: buffer of ${b.out.size} bytes too small`);
    const [gx, gy] = spreadGroups(shape.rows, this.ctx.device.limits.maxComputeWorkgroupsPerDimension);
    const uniform = uniformWords(this.ctx.device, [shape.rows, shape.D, step, gx, shape.eps, 0, 0, 0], new Set([4]));
    return { label: 'layernorm', pipeline: this.pipeline, bindGroup: bindAll(this.ctx.device, this.pipeline, uniform, [b.x, b.gamma, b.beta, b.out]), groups: [gx, gy, 1], uniform };
  }
}
