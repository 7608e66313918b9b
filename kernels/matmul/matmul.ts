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
import { matmulKey, matmulWgsl, outputTile, parseShapeSpec, workgroupBytes, type MatmulShapeSpec, type MatmulVariant, type SubgroupMatrixMatmul } from './matmul-wgsl.ts';

export type { MatmulVariant } from './matmul-wgsl.ts';

/**
 * The subgroup-matrix tiling for shapes without an entry in {@link GEMM_SHAPE_DEFAULTS}: 128×128
 * outputs per workgroup, K step 32, 4×2 subgroups of 32×64, X double-buffered through workgroup
 * memory, W matrices loaded straight from storage where the shape has whole tiles.
 */
export const DEFAULT_GEMM_SPEC = '128x128x32-sg4x2-s2-wd';

/**
 * Tiling per transformer GEMM role when no spec is given. Roles, for a model width D: qkv N = 3D,
 * K = D; proj N = K = D (+residual); fc1 N = 4D, K = D (+GELU); fc2 N = D, K = 4D (+residual).
 * H200 sweeps of 2026-11-29 (NOTES.md; passes agree within 1 %): 128×256 outputs per workgroup,
 * 2×4 subgroups of 64×64 (16 accumulators, 16 products per 8 matrix loads), W straight from
 * storage, was fastest for every role; K step 64 beat 32 (2.12 vs 2.26 ms per block at
 * M = 12,608: 84.4 TF/s; the old default 128x128x32-sg4x2-s2-wd 3.17 ms). It needs whole tiles
 * (N % 256, K % 64): its staged-W fallback does not fit in 48 KiB, so other shapes get
 * DEFAULT_GEMM_SPEC. One table for all roles today; kept per role for other models and GPUs.
 */
export const GEMM_SHAPE_DEFAULTS: Record<'qkv' | 'proj' | 'fc1' | 'fc2', string> = {
  qkv: '128x256x64-sg2x4-s2-wd',
  proj: '128x256x64-sg2x4-s2-wd',
  fc1: '128x256x64-sg2x4-s2-wd',
  fc2: '128x256x64-sg2x4-s2-wd',
};

/** The transformer role of a GEMM shape, if it is one of {@link GEMM_SHAPE_DEFAULTS}'s. */
export function gemmRole(o: { N: number; K: number; gelu?: boolean; residual?: boolean; transposeW?: boolean; outF32?: boolean }): keyof typeof GEMM_SHAPE_DEFAULTS | undefined {
  if (o.transposeW || o.outF32) return undefined;
  const gelu = o.gelu ?? false, res = o.residual ?? false;
  if (!gelu && !res && o.N === 3 * o.K) return 'qkv';
  if (!gelu && res && o.N === o.K) return 'proj';
  if (gelu && !res && o.N === 4 * o.K) return 'fc1';
  if (!gelu && res && o.K === 4 * o.N) return 'fc2';
  return undefined;
}

/**
 * The tiling for one GEMM from a spec: a single tiling (`BMxBNxBK-sgMxN-s1|s2[-wd|-wp]`) for every
 * shape, or per role, `qkv=…,proj=…,fc1=…,fc2=…` (roles left out, and other shapes, take the
 * per-shape default). No spec: LAMINA_GEMM_SPEC if set, else {@link GEMM_SHAPE_DEFAULTS} by role, else
 * DEFAULT_GEMM_SPEC.
 */
export function resolveGemmSpec(spec: string | undefined, o: Parameters<typeof gemmRole>[0]): { spec: string; explicit: boolean } {
  // LAMINA_GEMM_SPEC (same syntax) replaces the built-in defaults without a code change (device A/B
  // runs); unlike an explicit spec it falls back to DEFAULT_GEMM_SPEC where it does not fit.
  const env = process.env.LAMINA_GEMM_SPEC?.trim();
  if (!spec && env) return { spec: resolveGemmSpec(env, o).spec, explicit: false };
  const role = gemmRole(o);
  if (spec && !spec.includes('=')) return { spec, explicit: true };
  const table: Partial<Record<string, string>> = {};
  for (const part of (spec ?? '').split(',').filter(Boolean)) {
    const [k, v] = part.split('=');
    if (!k || !v || !(k in GEMM_SHAPE_DEFAULTS)) throw new InvalidParameterError(`GEMM spec '${spec}': expected ROLE=TILING entries, roles ${Object.keys(GEMM_SHAPE_DEFAULTS).join(', ')}`);
    parseShapeSpec(v);
    table[k] = v;
  }
  if (role && table[role]) return { spec: table[role]!, explicit: true };
  return { spec: role ? GEMM_SHAPE_DEFAULTS[role] : DEFAULT_GEMM_SPEC, explicit: false };
}

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
  /** W is [N, K] (the product is X·Wᵀ). @defaultValue false */
  transposeW?: boolean;
  /** f32 output whatever the precision. @defaultValue false */
  outF32?: boolean;
  /** Subgroup-matrix tiling, one for all shapes or per role ({@link resolveGemmSpec}). */
  spec?: string;
}

export interface MatmulShape { M: number; N: number; K: number }

/** One operand of a batched product: element (z, r, c) at `(z / heads)·i + (z % heads)·j + offset + r·ld + c`. */
export interface OperandLayout { ld: number; i?: number; j?: number; offset?: number }

/**
 * `batch` products of M×N×K, grouped as (batch / heads) × heads (attention: images × heads).
 * `kw`: rows of W that hold data (rows from kw to K read as zeros; the keys of one image when
 * K is padded). @defaultValue K
 */
export interface BatchedShape extends MatmulShape { batch: number; heads: number; kw?: number; x: OperandLayout; w: OperandLayout; y: OperandLayout }

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
export function chooseMatmul(caps: GpuCapabilities, options: MatmulOptions, maxWorkgroupBytes = 16384): MatmulVariant {
  const gelu = options.gelu ?? false, residual = options.residual ?? false;
  const transposeW = options.transposeW ?? false, outF32 = options.outF32 ?? false;
  const path = options.path ?? 'auto';
  if (path !== 'portable') {
    const config = caps.subgroupMatrixConfigs.find((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === c.N && c.N === c.K);
    const sg = caps.subgroupMaxSize;
    // 16-byte staging runs along K for X (and for W when transposed), along N for W.
    const shapeOk = options.K % 8 === 0 && (transposeW || options.N % 8 === 0);
    const ok = options.precision === 'f16' && caps.shaderF16 && caps.subgroups && caps.subgroupMatrix && config
      && caps.subgroupMinSize === sg && shapeOk && config.M * config.M % sg === 0;
    if (ok) {
      const make = (s: MatmulShapeSpec): SubgroupMatrixMatmul => {
        // Direct W loads have no bounds checks of their own: only for whole tiles of row-major W.
        const wDirect = s.wDirect && !transposeW && options.N % s.bn === 0 && options.K % s.bk === 0;
        return { path: 'subgroup-matrix', ...s, wDirect, wPrefetch: wDirect && s.wPrefetch, xDirect: wDirect && !!s.xDirect, subgroupSize: sg, tile: config.M, gelu, residual, transposeW, outF32 };
      };
      const { spec, explicit } = resolveGemmSpec(options.spec, options);
      let v: SubgroupMatrixMatmul = make(parseShapeSpec(spec));
      if (workgroupBytes(v) > maxWorkgroupBytes) {
        if (explicit) throw new InvalidParameterError(`GEMM ${spec} needs ${workgroupBytes(v)} bytes of workgroup memory; the adapter has ${maxWorkgroupBytes}`);
        v = make(parseShapeSpec(DEFAULT_GEMM_SPEC));
      }
      // The per-role defaults are for whole tiles; a shape they would stage W for takes the general default.
      if (!explicit && spec !== DEFAULT_GEMM_SPEC && !v.wDirect) v = make(parseShapeSpec(DEFAULT_GEMM_SPEC));
      return withEpilogueTiles(v, maxWorkgroupBytes);
    }
    if (path === 'subgroup-matrix') throw new InvalidParameterError('the subgroup-matrix GEMM needs f16, an adapter with chromium-experimental-subgroup-matrix (square f16→f32), a fixed subgroup size, and K, N multiples of 8');
  }
  if (options.precision === 'f16' && !caps.shaderF16) throw new InvalidParameterError('f16 GEMM needs the shader-f16 feature');
  return { path: 'portable', precision: options.precision, opaqueLoops: caps.cpu, gelu, residual, transposeW, outF32 };
}

/**
 * The most result tiles per epilogue round (up to 4: each holds its loaded values in registers)
 * whose scratch still fits in workgroup memory: fewer barrier pairs, and the residual loads of a
 * round in flight together.
 */
export function withEpilogueTiles(v: SubgroupMatrixMatmul, maxWorkgroupBytes: number): SubgroupMatrixMatmul {
  const tiles = (v.bm / v.sgm / v.tile) * (v.bn / v.sgn / v.tile);
  const run = v.tile * v.tile / v.subgroupSize;
  if (!Number.isInteger(run) || run > v.tile || v.tile % run) return v;
  for (const e of [4, 2]) if (tiles % e === 0 && workgroupBytes({ ...v, epiTiles: e }) <= maxWorkgroupBytes) return { ...v, epiTiles: e };
  return v;
}

export class Matmul {
  private readonly ones = new Map<number, GPUBuffer>();

  private constructor(readonly ctx: GpuContext, readonly variant: MatmulVariant, readonly precision: 'f16' | 'f32', private readonly pipeline: GPUComputePipeline,
    /** Staged twin of an X-direct variant, for M not a multiple of the matrix side. */
    private readonly staged?: { variant: MatmulVariant; pipeline: GPUComputePipeline }) {}

  /** Compiles (once per context and variant) the kernel. */
  static async create(ctx: GpuContext, options: MatmulOptions): Promise<Matmul> {
    if (options.precision !== 'f16' && options.precision !== 'f32') throw invalidParameter('precision', "'f16' or 'f32'", options.precision);
    resolveGemmSpec(options.spec, options);
    const variant = chooseMatmul(ctx.capabilities, options, ctx.device.limits.maxComputeWorkgroupStorageSize);
    const pipeline = await ctx.pipeline(matmulKey(variant), matmulWgsl(variant));
    let staged: { variant: MatmulVariant; pipeline: GPUComputePipeline } | undefined;
    if (variant.path === 'subgroup-matrix' && variant.xDirect) {
      const sv = withEpilogueTiles({ ...variant, xDirect: false, epiTiles: undefined }, ctx.device.limits.maxComputeWorkgroupStorageSize);
      staged = { variant: sv, pipeline: await ctx.pipeline(matmulKey(sv), matmulWgsl(sv)) };
    }
    return new Matmul(ctx, variant, options.precision, pipeline, staged);
  }

  get name(): string { return matmulKey(this.variant); }

  /** A dispatch for this shape and these buffers (its uniform is the caller's to destroy). */
  prepare(shape: MatmulShape, b: MatmulBuffers): Dispatch {
    const { M, N, K } = shape;
    return this.prepareBatched({ M, N, K, batch: 1, heads: 1, x: { ld: K }, w: { ld: this.variant.transposeW ? K : N }, y: { ld: N } }, b);
  }

  /** A dispatch of `batch` products with strided operands (one workgroup layer per product). */
  prepareBatched(shape: BatchedShape, b: MatmulBuffers): Dispatch {
    const { M, N, K, batch, heads } = shape;
    const kw = shape.kw ?? K;
    for (const [k, v] of Object.entries({ M, N, K, batch, heads, kw })) if (!Number.isInteger(v) || v < 1 || v >= 2 ** 31) throw invalidParameter(k, 'positive integer', v);
    if (kw > K) throw invalidParameter('kw', `at most K = ${K}`, kw);
    const v = this.variant;
    const sgmat = v.path === 'subgroup-matrix';
    if (sgmat && (K % 8 || (!v.transposeW && N % 8))) throw new InvalidParameterError(`subgroup-matrix GEMM needs K${v.transposeW ? '' : ' and N'} multiples of 8, got K=${K} N=${N}`);
    if (sgmat && v.wDirect && (N % v.bn || K % v.bk || kw !== K)) throw new InvalidParameterError(`GEMM ${this.name} loads W directly: needs N % ${v.bn} = 0, K % ${v.bk} = 0 and no padded rows`);
    const e = this.precision === 'f16' ? 2 : 4;
    const ye = v.outF32 ? 4 : e;
    const layout = (name: string, o: OperandLayout, rows: number, cols: number, minLd: number, buf: GPUBuffer, elemBytes: number) => {
      const i = o.i ?? 0, j = o.j ?? 0, off = o.offset ?? 0;
      for (const [k, x] of Object.entries({ ld: o.ld, i, j, offset: off })) {
        if (!Number.isInteger(x) || x < 0 || x >= 2 ** 31) throw invalidParameter(`${name}.${k}`, 'non-negative integer', x);
        if (sgmat && name !== 'y' && x % 8) throw invalidParameter(`${name}.${k}`, 'multiple of 8 (16-byte loads)', x);
      }
      if (o.ld < minLd) throw invalidParameter(`${name}.ld`, `at least ${minLd}`, o.ld);
      const end = Math.floor((batch - 1) / heads) * i + Math.min(heads, batch) * j - j + off + (rows - 1) * o.ld + cols;
      if (end * elemBytes > buf.size || end >= 2 ** 32) throw new InvalidParameterError(`matmul ${name}: needs ${end * elemBytes} bytes, buffer has ${buf.size}`);
      return [i, j, off];
    };
    const [wr, wc] = v.transposeW ? [N, K] : [kw, N];
    const xl = layout('x', shape.x, M, K, K, b.x, e);
    const wl = layout('w', shape.w, wr, wc, wc, b.w, e);
    const yl = layout('y', shape.y, M, N, N, b.out, ye);
    const need = (name: string, buf: GPUBuffer, elems: number) => {
      if (buf.size < elems * e) throw new InvalidParameterError(`matmul ${name}: needs ${elems * e} bytes, buffer has ${buf.size}`);
    };
    need('bias', b.bias, N);
    if (b.gamma) need('gamma', b.gamma, N);
    if ([b.x, b.w, b.bias, b.gamma].includes(b.out)) throw new InvalidParameterError('matmul output must not alias an input');
    const direct = !(this.staged && M % (v as SubgroupMatrixMatmul).tile);
    const pipeline = direct ? this.pipeline : this.staged!.pipeline;
    const [tm, tn] = outputTile(v);
    const limit = this.ctx.device.limits.maxComputeWorkgroupsPerDimension;
    const gx = Math.ceil(N / tn), gy = Math.ceil(M / tm);
    if (gx > limit || gy > limit || batch > limit) throw new InvalidParameterError(`matmul grid ${gx}×${gy}×${batch} exceeds ${limit} workgroups per dimension`);
    const uniform = uniformWords(this.ctx.device, [M, N, K, kw, shape.x.ld, shape.w.ld, shape.y.ld, heads, xl[0]!, xl[1]!, xl[2]!, 0, wl[0]!, wl[1]!, wl[2]!, 0, yl[0]!, yl[1]!, yl[2]!, 0]);
    const bindGroup = bindAll(this.ctx.device, pipeline, uniform, [b.x, b.w, b.bias, b.gamma ?? this.onesFor(N), b.out]);
    return { label: direct ? this.name : matmulKey(this.staged!.variant), pipeline, bindGroup, groups: [gx, gy, batch], uniform };
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
