/**
 * GEMM on WebGPU with a fused epilogue: Y[M, N] = acc + bias (→ GELU) (→ out + gamma·y), where
 * acc = X[M, K] · W[K, N]. Row-major X and Y; W as [K, N] (a PyTorch Linear weight [N, K]
 * transposed once at upload). f16 or f32 storage, f32 accumulation. Two paths, picked from the
 * adapter ({@link chooseMatmul}): `subgroup-matrix` (f16 tensor cores through
 * chromium-experimental-subgroup-matrix, K and N multiples of 8) and `portable` (workgroup tiles).
 *
 * @example
 *   const mm = await Matmul.create(ctx, { precision: 'f16', N: 768, K: 768, gelu: true });
 *   const d = mm.prepare({ M: 197, N: 768, K: 768 }, { x, w, bias, out });
 *   const pass = encoder.beginComputePass(); recordDispatch(pass, d); pass.end();
 */
import { invalidParameter, InvalidParameterError } from '../../src/errors.ts';
import type { GpuCapabilities, GpuContext } from '../gpu/gpu-context.ts';
import { bindAll, type Dispatch, uniformWords } from '../dispatch/dispatch.ts';
import { matmulKey, matmulWgsl, outputTile, type MatmulVariant } from './matmul-wgsl.ts';

export type { MatmulVariant } from './matmul-wgsl.ts';

export interface MatmulOptions {
  precision: 'f16' | 'f32';
  /** Output columns and inner size, needed to choose the path. */
  N: number;
  K: number;
  /** @defaultValue false */
  gelu?: boolean;
  /** Add into the output (`out = out + gamma · y`). @defaultValue false */
  residual?: boolean;
  /** @defaultValue 'auto' */
  path?: 'auto' | 'portable' | 'subgroup-matrix';
}

export interface MatmulShape { M: number; N: number; K: number }

export interface MatmulBuffers {
  x: GPUBuffer;
  /** [K, N] row-major. */
  w: GPUBuffer;
  /** [N]. */
  bias: GPUBuffer;
  /** [N] layer scale for the residual add; @defaultValue ones */
  gamma?: GPUBuffer;
  /** [M, N]; read too when `residual`. Must not be x, w, bias or gamma. */
  out: GPUBuffer;
}

/** The kernel for an adapter and shape: subgroup matrices when the adapter and shape allow. */
export function chooseMatmul(caps: GpuCapabilities, options: MatmulOptions): MatmulVariant {
  const gelu = options.gelu ?? false, residual = options.residual ?? false;
  const path = options.path ?? 'auto';
  if (path !== 'portable') {
    const config = caps.subgroupMatrixConfigs.find((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === c.N && c.N === c.K);
    const sg = caps.subgroupMaxSize;
    const ok = options.precision === 'f16' && caps.shaderF16 && caps.subgroups && caps.subgroupMatrix && config
      && caps.subgroupMinSize === sg && options.K % 8 === 0 && options.N % 8 === 0 && config.M * config.M % sg === 0;
    if (ok) return { path: 'subgroup-matrix', bm: 128, bn: 128, bk: 32, sgm: 4, sgn: 2, subgroupSize: sg, tile: config.M, gelu, residual };
    if (path === 'subgroup-matrix') throw new InvalidParameterError('the subgroup-matrix GEMM needs f16, an adapter with chromium-experimental-subgroup-matrix (square f16→f32), a fixed subgroup size, and K, N multiples of 8');
  }
  if (options.precision === 'f16' && !caps.shaderF16) throw new InvalidParameterError('f16 GEMM needs the shader-f16 feature');
  return { path: 'portable', precision: options.precision, opaqueLoops: caps.cpu, gelu, residual };
}

export class Matmul {
  private readonly ones = new Map<number, GPUBuffer>();

  private constructor(readonly ctx: GpuContext, readonly variant: MatmulVariant, readonly precision: 'f16' | 'f32', private readonly pipeline: GPUComputePipeline) {}

  /** Compiles (once per context and variant) the kernel. */
  static async create(ctx: GpuContext, options: MatmulOptions): Promise<Matmul> {
    if (options.precision !== 'f16' && options.precision !== 'f32') throw invalidParameter('precision', "'f16' or 'f32'", options.precision);
    const variant = chooseMatmul(ctx.capabilities, options);
    const pipeline = await ctx.pipeline(matmulKey(variant), matmulWgsl(variant));
    return new Matmul(ctx, variant, options.precision, pipeline);
  }

  get name(): string { return matmulKey(this.variant); }

  /** A dispatch for this shape and these buffers (its uniform is the caller's to destroy). */
  prepare(shape: MatmulShape, b: MatmulBuffers): Dispatch {
    const { M, N, K } = shape;
    for (const [k, v] of Object.entries(shape)) if (!Number.isInteger(v) || v < 1 || v >= 2 ** 31) throw invalidParameter(k, 'positive integer', v);
    if (this.variant.path === 'subgroup-matrix' && (K % 8 || N % 8)) throw new InvalidParameterError(`subgroup-matrix GEMM needs K and N multiples of 8, got K=${K} N=${N}`);
    const e = this.precision === 'f16' ? 2 : 4;
    const need = (name: string, buf: GPUBuffer, elems: number) => {
      if (buf.size < elems * e) throw new InvalidParameterError(`matmul ${name}: needs ${elems * e} bytes, buffer has ${buf.size}`);
    };
    need('x', b.x, M * K); need('w', b.w, K * N); need('bias', b.bias, N); need('out', b.out, M * N);
    if (b.gamma) need('gamma', b.gamma, N);
    if ([b.x, b.w, b.bias, b.gamma].includes(b.out)) throw new InvalidParameterError('matmul output must not alias an input');
    const [tm, tn] = outputTile(this.variant);
    const limit = this.ctx.device.limits.maxComputeWorkgroupsPerDimension;
    const gx = Math.ceil(N / tn), gy = Math.ceil(M / tm);
    if (gx > limit || gy > limit) throw new InvalidParameterError(`matmul grid ${gx}×${gy} exceeds ${limit} workgroups per dimension`);
    const uniform = uniformWords(this.ctx.device, [M, N, K, 0]);
    const bindGroup = bindAll(this.ctx.device, this.pipeline, uniform, [b.x, b.w, b.bias, b.gamma ?? this.onesFor(N), b.out]);
    return { label: this.name, pipeline: this.pipeline, bindGroup, groups: [gx, gy, 1], uniform };
  }

  private onesFor(n: number): GPUBuffer {
    let buf = this.ones.get(n);
    if (!buf) {
      const data = this.precision === 'f16' ? new Uint16Array(n).fill(0x3c00) : new Float32Array(n).fill(1);
      buf = this.ctx.upload(data, GPUBufferUsage.STORAGE, 'matmul-ones');
      this.ones.set(n, buf);
    }
    return buf;
  }

  destroy(): void {
    for (const b of this.ones.values()) b.destroy();
    this.ones.clear();
  }
}
