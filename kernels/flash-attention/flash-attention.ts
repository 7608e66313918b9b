/**
 * Flash attention on WebGPU: softmax(scale · Q·Kᵀ + mask) · V per batch and head, tiled over queries
 * and keys with an online softmax, so memory stays linear in the sequence length.
 *
 * Two paths, picked at run time from the adapter (see {@link chooseVariant}):
 *  - `subgroup-matrix`: f16 tensor-core products through chromium-experimental-subgroup-matrix;
 *  - `portable`: plain WGSL with workgroup-memory tiles, f16 or f32, for every other adapter.
 *
 * Tensors are (batch, seq, heads, headDim) with heads interleaved per token: element (b, s, h, d)
 * sits at `offset + (b·seq + s)·rowStride + h·headDim + d`. A packed QKV projection output is three
 * views of one buffer (offsets 0, H·D, 2·H·D, rowStride 3·H·D). A key padding mask is one u32 per
 * (batch, key), non-zero = attend. A query row whose keys are all masked comes out as zeros.
 *
 * @example
 *   const ctx = await GpuContext.create();
 *   const fa = await FlashAttention.create(ctx, { headDim: 64, precision: 'f16' });
 *   const enc = ctx.device.createCommandEncoder();
 *   fa.encode(enc, { batch: 1, heads: 12, seqQ: 4096, seqK: 4096, headDim: 64 }, { q, k, v, out });
 *   ctx.device.queue.submit([enc.finish()]);
 */
import { invalidParameter, InvalidParameterError } from '../../src/errors.ts';
import type { GpuCapabilities, GpuContext } from '../gpu/gpu-context.ts';
import {
  attentionWgsl, rowsPerWorkgroup, variantKey, workgroupBytes, workgroupInvocations, type AttentionVariant, type SubgroupMatrixVariant,
} from './flash-attention-wgsl.ts';

export type { AttentionVariant, SubgroupMatrixVariant } from './flash-attention-wgsl.ts';

export interface AttentionShape { batch: number; heads: number; seqQ: number; seqK: number; headDim: number }

/** A tensor view in a GPU buffer; offset and rowStride count elements, not bytes. */
export interface TensorRef {
  buffer: GPUBuffer;
  /** @defaultValue 0 */
  offset?: number;
  /** Elements between consecutive tokens; @defaultValue heads · headDim */
  rowStride?: number;
}

export interface AttentionBuffers {
  q: TensorRef; k: TensorRef; v: TensorRef;
  /** Written; must not be the buffer of q, k or v. */
  out: TensorRef;
  /** One u32 per (batch, key) at `offset + b·seqK + key`; non-zero keeps the key. */
  mask?: { buffer: GPUBuffer; offset?: number };
}

export interface FlashAttentionOptions {
  headDim: number;
  /** Tensor element type; f32 always takes the portable path. @defaultValue 'f16' */
  precision?: 'f16' | 'f32';
  /** @defaultValue 'auto' (subgroup-matrix when the adapter has it, else portable) */
  path?: 'auto' | 'subgroup-matrix' | 'portable';
  /** An explicit kernel shape (benchmarks and tests); overrides `path`. */
  variant?: AttentionVariant;
}

export interface EncodeOptions {
  /** Softmax scale; @defaultValue 1 / √headDim */
  scale?: number;
  /** Time this pass (from `ctx.timer.passTimestamps()`). */
  timestampWrites?: GPUComputePassTimestampWrites;
}

const LOG2E = 1.4426950408889634;

/**
 * Fast-path kernels in order of preference for a head size (the first that fits the adapter's
 * workgroup memory is taken), ranked by GPU time on the H200 at S = 16,384 with Dawn's robustness
 * off (the default since e63880b); only kernels that passed `lamina bench attention --check` there
 * are listed (NOTES.md, runs/2026-11-29-s3-call{2,3,4}-*). Design 2 staging modes: pf = register
 * prefetch, cp = compact P scratch (38 KB), split = K and V staged in two places, u32 = 4-byte loads.
 * D = 64, NSG 8, BC 32: pf 83.1 TFLOP/s, pf-cp 83.1, pf-split 81.4, pf-u32 80.6, pf-split-u32 75.0,
 * top-of-tile 68.9; then NSG 4 × 2 query tiles (50.1), NSG 4 with 64-key tiles (34.3), NSG 4
 * (27.8 KB, for small workgroup memories), design 3. D = 128, NSG 4, BC 32: pf 86.2, pf-split-u32
 * 59.2, then design 3 (19.0).
 */
export function fastPathCandidates(headDim: number, subgroupSize: number): AttentionVariant[] {
  const v3 = (accumulator: 'matrix' | 'private', mTilesPerSubgroup: number, keysPerTile: number): SubgroupMatrixVariant => (
    { path: 'subgroup-matrix', headDim, tile: 16, subgroupSize, subgroupsPerWorkgroup: 1, mTilesPerSubgroup, keysPerTile, accumulator });
  const v2 = (subgroupsPerWorkgroup: number, mTilesPerSubgroup: number, keysPerTile: number, staging: string): AttentionVariant => ({
    path: 'subgroup-matrix-v2', headDim, tile: 16, subgroupSize, subgroupsPerWorkgroup, mTilesPerSubgroup, keysPerTile, emulate: false, alignedFlag: true,
    prefetch: staging.includes('pf'), splitStage: staging.includes('split'), narrowStage: staging.includes('u32'), compactP: staging.includes('cp'),
    doubleBuffer: staging.includes('db'), plainFlagRead: staging.includes('nu'), fullTileFast: staging.includes('ff'), prescaleQ: staging.includes('sq'),
  });
  return headDim <= 64
    ? [v2(8, 1, 32, 'pf-cp-db-nu-ff-sq'), v2(8, 1, 32, 'pf-cp-db-nu'), v2(8, 1, 32, 'pf'), v2(8, 1, 32, 'pf-cp'), v2(8, 1, 32, 'pf-split'), v2(8, 1, 32, 'pf-u32'), v2(8, 1, 32, 'pf-split-u32'), v2(8, 1, 32, ''),
      v2(4, 2, 32, 'pf-split-u32'), v2(4, 1, 64, 'pf-split-u32'), v2(4, 1, 32, 'pf-split-u32'), v3('matrix', 1, 64), v3('matrix', 1, 32), v3('matrix', 1, 16)]
    : [v2(8, 1, 16, 'pf-cp-db-nu-ff-sq'), v2(8, 1, 16, 'pf-cp-db-nu'), v2(4, 1, 32, 'pf'), v2(4, 1, 32, 'pf-split-u32'), v3('matrix', 1, 32), v3('matrix', 1, 64), v3('matrix', 1, 16)];
}

/**
 * Query rows at and beyond which the long-sequence shape runs: 256 query rows a workgroup (two
 * query tiles per subgroup) with 16-key tiles halve the K/V staging per FLOP, but leave most SMs idle
 * for short sequences (H200, D = 64: 143.8 vs 108.4 TFLOP/s at 16k, 39.3 vs 57.1 at 1k).
 */
export const LONG_SEQUENCE_ROWS = 8192;

/** The long-sequence shape for a head size, when one beats the default there (H200 measurements). */
export function longSequenceCandidate(headDim: number, subgroupSize: number): AttentionVariant | undefined {
  if (headDim > 64) return undefined;
  return {
    path: 'subgroup-matrix-v2', headDim, tile: 16, subgroupSize, subgroupsPerWorkgroup: 8, mTilesPerSubgroup: 2, keysPerTile: 16, emulate: false, alignedFlag: true,
    prefetch: true, compactP: true, doubleBuffer: true, plainFlagRead: true, fullTileFast: true, prescaleQ: true,
  };
}

/** The kernel shape for an adapter, head size and precision (the fast path when possible). */
export function chooseVariant(caps: GpuCapabilities, limits: GPUSupportedLimits, headDim: number, precision: 'f16' | 'f32', path: 'auto' | 'subgroup-matrix' | 'portable' = 'auto'): AttentionVariant {
  return variantChoices(caps, limits, headDim, precision, path)[0]!;
}

/** Fast-path shapes that fit the adapter, best first, then the portable kernel (always last). */
function variantChoices(caps: GpuCapabilities, limits: GPUSupportedLimits, headDim: number, precision: 'f16' | 'f32', path: 'auto' | 'subgroup-matrix' | 'portable'): AttentionVariant[] {
  const fits = (v: AttentionVariant) => workgroupBytes(v) <= limits.maxComputeWorkgroupStorageSize
    && workgroupInvocations(v) <= limits.maxComputeInvocationsPerWorkgroup;
  const fast: AttentionVariant[] = [];
  if (path !== 'portable') {
    const config = caps.subgroupMatrixConfigs.find((c) => c.componentType === 'f16' && c.resultComponentType === 'f32'
      && c.M === c.N && c.N === c.K && headDim % c.M === 0);
    const usable = precision === 'f16' && caps.subgroupMatrix && caps.shaderF16 && caps.subgroups && config
      && caps.subgroupMinSize === caps.subgroupMaxSize;
    if (usable && config.M === 16) fast.push(...fastPathCandidates(headDim, caps.subgroupMaxSize).filter(fits));
    if (fast.length) return fast;
    if (path === 'subgroup-matrix') {
      throw new InvalidParameterError(`the subgroup-matrix attention path needs f16 tensors and an adapter with chromium-experimental-subgroup-matrix (f16→f32, square tiles dividing ${headDim}), shader-f16 and a fixed subgroup size`);
    }
  }
  for (const keysPerTile of headDim <= 64 ? [32, 16, 8] : [16, 8, 4]) {
    const v: AttentionVariant = { path: 'portable', headDim, precision, rowsPerWorkgroup: 64, keysPerTile, opaqueLoops: caps.cpu };
    if (fits(v)) return [v];
  }
  throw new InvalidParameterError(`head size ${headDim} does not fit this adapter's workgroup memory`);
}

interface Prepared { uniform: GPUBuffer; bindGroup: GPUBindGroup }

/**
 * Design 3 loads K and V operands straight from their storage buffers, so Dawn gives those bindings
 * a minimum size of one 16×16 f16 matrix ("Binding size (256) … is smaller than the minimum binding
 * size (512)" on the H200 for S = 1, H = 2, D = 64). Smaller K or V buffers take the portable kernel.
 */
const MATRIX_OPERAND_BYTES = 16 * 16 * 2;

const fastPathVerdicts = new WeakMap<GpuContext, Map<string, boolean>>();

/** One small random cross-attention case with a mask against the CPU reference. */
async function selfCheck(ctx: GpuContext, variant: AttentionVariant): Promise<boolean> {
  const { checkAttention } = await import('./attention-check.ts');
  try {
    const fa = await FlashAttention.create(ctx, { headDim: variant.headDim, precision: 'f16', variant });
    const r = await checkAttention(ctx, fa, { batch: 2, heads: 2, seqQ: 37, seqK: 90, headDim: variant.headDim }, { seed: 42, mask: 'random', guardElements: 64 });
    fa.destroy();
    return r.relError <= 1e-2 && r.unwritten === 0 && r.guardClobbered === 0 && r.nonFinite === 0;
  } catch {
    return false;
  }
}

/** The self-check's verdict on a fast shape, run once per context (a failure is logged once). */
async function passesSelfCheck(ctx: GpuContext, variant: AttentionVariant): Promise<boolean> {
  const key = variantKey(variant);
  let verdicts = fastPathVerdicts.get(ctx);
  if (!verdicts) fastPathVerdicts.set(ctx, verdicts = new Map());
  let verdict = verdicts.get(key);
  if (verdict === undefined) {
    verdict = await selfCheck(ctx, variant);
    verdicts.set(key, verdict);
    if (!verdict) process.emitWarning(`flash-attention: ${key} disagrees with the CPU reference on ${ctx.describe()}; not used`);
  }
  return verdict;
}

export class FlashAttention {
  private readonly prepared = new Map<string, Prepared>();
  private readonly ids = new WeakMap<GPUBuffer, number>();
  private nextId = 1;
  private noMask: GPUBuffer | undefined;

  private constructor(readonly ctx: GpuContext, readonly variant: AttentionVariant, readonly precision: 'f16' | 'f32', private readonly pipeline: GPUComputePipeline,
    private readonly tiny?: { variant: AttentionVariant; pipeline: GPUComputePipeline },
    private readonly long?: { variant: AttentionVariant; pipeline: GPUComputePipeline }) {}

  /**
   * Compiles (once per context and variant) the kernel for this head size and precision. With
   * path 'auto', a subgroup-matrix kernel is first checked once per context against the CPU
   * reference on a small random case (cross-attention with a mask and a partial key tile), and
   * the portable kernel is used if it fails.
   */
  static async create(ctx: GpuContext, options: FlashAttentionOptions): Promise<FlashAttention> {
    const headDim = options.headDim;
    if (!Number.isInteger(headDim) || headDim < 8 || headDim > 256 || headDim % 8) throw invalidParameter('headDim', 'multiple of 8 between 8 and 256', headDim);
    const precision = options.precision ?? 'f16';
    let variant = options.variant ?? chooseVariant(ctx.capabilities, ctx.device.limits, headDim, precision, options.path);
    if (!options.variant && (options.path ?? 'auto') === 'auto' && variant.path !== 'portable') {
      // the best shapes first; each must agree with the CPU reference on this adapter (a driver may
      // miscompile one, or refuse an extension), else the next, then the portable kernel
      const choices = variantChoices(ctx.capabilities, ctx.device.limits, headDim, precision, 'auto').slice(0, 3);
      let chosen: AttentionVariant | undefined;
      for (const v of choices) {
        if (await passesSelfCheck(ctx, v)) { chosen = v; break; }
      }
      variant = chosen ?? chooseVariant(ctx.capabilities, ctx.device.limits, headDim, precision, 'portable');
    }
    let long: { variant: AttentionVariant; pipeline: GPUComputePipeline } | undefined;
    const lv = variant.path === 'subgroup-matrix-v2' && !options.variant ? longSequenceCandidate(headDim, variant.subgroupSize) : undefined;
    if (lv && workgroupBytes(lv) <= ctx.device.limits.maxComputeWorkgroupStorageSize && workgroupInvocations(lv) <= ctx.device.limits.maxComputeInvocationsPerWorkgroup) {
      if (await passesSelfCheck(ctx, lv)) long = { variant: lv, pipeline: await ctx.pipeline(`flash-attention/${variantKey(lv)}`, attentionWgsl(lv)) };
    }
    if (variant.headDim !== headDim) throw invalidParameter('variant.headDim', `${headDim}`, variant.headDim);
    if (variant.path !== 'portable' && precision !== 'f16') throw invalidParameter('precision', "'f16' for the subgroup-matrix path", precision);
    if (variant.path === 'portable' && variant.precision !== precision) throw invalidParameter('variant.precision', precision, variant.precision);
    const key = `flash-attention/${variantKey(variant)}`;
    const pipeline = await ctx.pipeline(key, attentionWgsl(variant));
    let tiny: { variant: AttentionVariant; pipeline: GPUComputePipeline } | undefined;
    if (variant.path === 'subgroup-matrix') {
      const small = chooseVariant(ctx.capabilities, ctx.device.limits, headDim, precision, 'portable');
      tiny = { variant: small, pipeline: await ctx.pipeline(`flash-attention/${variantKey(small)}`, attentionWgsl(small)) };
    }
    return new FlashAttention(ctx, variant, precision, pipeline, tiny, long);
  }

  /** Name of the kernel variant, for logs and benchmark tables. */
  get name(): string { return variantKey(this.variant); }

  /** Kernel names, the long-sequence one included, for logs. */
  describe(): string {
    return this.long ? `${this.name}, ≥ ${LONG_SEQUENCE_ROWS} queries: ${variantKey(this.long.variant)}` : this.name;
  }

  /** The kernel variant a call with `seqQ` query rows runs. */
  variantFor(seqQ: number): AttentionVariant {
    return this.long && seqQ >= LONG_SEQUENCE_ROWS ? this.long.variant : this.variant;
  }

  /** Records one compute pass into `encoder`; nothing is submitted. */
  encode(encoder: GPUCommandEncoder, shape: AttentionShape, buffers: AttentionBuffers, options: EncodeOptions = {}): void {
    const { batch, heads, seqQ } = checkShape(shape, this.variant.headDim);
    const useTiny = this.tiny !== undefined && Math.min(buffers.k.buffer.size, buffers.v.buffer.size) < MATRIX_OPERAND_BYTES;
    const useLong = !useTiny && this.long !== undefined && seqQ >= LONG_SEQUENCE_ROWS;
    const [variant, pipeline] = useTiny ? [this.tiny!.variant, this.tiny!.pipeline] : useLong ? [this.long!.variant, this.long!.pipeline] : [this.variant, this.pipeline];
    const prepared = this.prepare(shape, buffers, options.scale ?? 1 / Math.sqrt(shape.headDim), pipeline);
    const groupsX = Math.ceil(seqQ / rowsPerWorkgroup(variant));
    const maxGroups = this.ctx.device.limits.maxComputeWorkgroupsPerDimension;
    if (groupsX > maxGroups || heads > maxGroups || batch > maxGroups) {
      throw new InvalidParameterError(`attention grid ${groupsX}×${heads}×${batch} exceeds ${maxGroups} workgroups per dimension; split the call`);
    }
    const pass = encoder.beginComputePass(options.timestampWrites ? { timestampWrites: options.timestampWrites } : {});
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, prepared.bindGroup);
    pass.dispatchWorkgroups(groupsX, heads, batch);
    pass.end();
  }

  /** Encodes and submits one call in its own command encoder. */
  run(shape: AttentionShape, buffers: AttentionBuffers, options: EncodeOptions = {}): void {
    const encoder = this.ctx.device.createCommandEncoder({ label: 'flash-attention' });
    this.encode(encoder, shape, buffers, options);
    this.ctx.device.queue.submit([encoder.finish()]);
  }

  /** Frees the cached uniforms (the pipeline stays in the context's cache). */
  destroy(): void {
    for (const p of this.prepared.values()) p.uniform.destroy();
    this.prepared.clear();
    this.noMask?.destroy();
  }

  private id(buffer: GPUBuffer): number {
    let id = this.ids.get(buffer);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(buffer, id);
    }
    return id;
  }

  // Uniforms and bind groups are cached per (buffers, shape, scale): a ViT calls the same
  // attention with the same buffers every layer and every batch.
  private prepare(shape: AttentionShape, buffers: AttentionBuffers, scale: number, pipeline: GPUComputePipeline): Prepared {
    const elemBytes = this.precision === 'f16' ? 2 : 4;
    const align = this.variant.path !== 'portable' || this.precision === 'f16' ? 8 : 4;
    const rowElems = shape.heads * shape.headDim;
    const view = (name: string, t: TensorRef, seq: number) => {
      const offset = t.offset ?? 0;
      const rowStride = t.rowStride ?? rowElems;
      if (!Number.isInteger(offset) || offset < 0 || offset % align) throw invalidParameter(`${name}.offset`, `non-negative multiple of ${align}`, offset);
      if (!Number.isInteger(rowStride) || rowStride < rowElems || rowStride % align) throw invalidParameter(`${name}.rowStride`, `multiple of ${align} ≥ ${rowElems}`, rowStride);
      const end = offset + (shape.batch * seq - 1) * rowStride + rowElems;
      if (end * elemBytes > t.buffer.size || end >= 2 ** 32) {
        throw new InvalidParameterError(`${name}: ${shape.batch}×${seq} tokens of ${rowElems} elements (row stride ${rowStride}, offset ${offset}) need ${end * elemBytes} bytes but the buffer has ${t.buffer.size}`);
      }
      return [offset, rowStride];
    };
    if ([buffers.q, buffers.k, buffers.v].some((t) => t.buffer === buffers.out.buffer)) throw new InvalidParameterError('attention output must not share a buffer with q, k or v');
    const q = view('q', buffers.q, shape.seqQ);
    const k = view('k', buffers.k, shape.seqK);
    const v = view('v', buffers.v, shape.seqK);
    const o = view('out', buffers.out, shape.seqQ);
    const maskOffset = buffers.mask?.offset ?? 0;
    if (buffers.mask && (maskOffset + shape.batch * shape.seqK) * 4 > buffers.mask.buffer.size) {
      throw new InvalidParameterError(`mask: ${shape.batch}×${shape.seqK} u32 values from offset ${maskOffset} do not fit its ${buffers.mask.buffer.size} bytes`);
    }
    const maskBuffer = buffers.mask?.buffer ?? (this.noMask ??= this.ctx.device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: 'no-mask' }));
    const params = new ArrayBuffer(64);
    const u = new Uint32Array(params);
    u.set([shape.batch, shape.heads, shape.seqQ, shape.seqK, q[0]!, q[1]!, k[0]!, k[1]!, v[0]!, v[1]!, o[0]!, o[1]!]);
    new Float32Array(params, 48, 1)[0] = scale * LOG2E;
    u[13] = buffers.mask ? 1 : 0;
    u[14] = maskOffset;
    const key = [pipeline === this.pipeline ? 'main' : pipeline === this.long?.pipeline ? 'long' : 'tiny', this.id(buffers.q.buffer), this.id(buffers.k.buffer), this.id(buffers.v.buffer), this.id(buffers.out.buffer), this.id(maskBuffer), ...u].join(',');
    let prepared = this.prepared.get(key);
    if (!prepared) {
      if (this.prepared.size >= 64) {
        const [oldKey, old] = this.prepared.entries().next().value as [string, Prepared];
        old.uniform.destroy();
        this.prepared.delete(oldKey);
      }
      const uniform = this.ctx.device.createBuffer({ size: 64, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'flash-attention-params' });
      this.ctx.device.queue.writeBuffer(uniform, 0, params);
      const bindGroup = this.ctx.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: uniform } },
          { binding: 1, resource: { buffer: buffers.q.buffer } },
          { binding: 2, resource: { buffer: buffers.k.buffer } },
          { binding: 3, resource: { buffer: buffers.v.buffer } },
          { binding: 4, resource: { buffer: maskBuffer } },
          { binding: 5, resource: { buffer: buffers.out.buffer } },
        ],
      });
      prepared = { uniform, bindGroup };
      this.prepared.set(key, prepared);
    }
    return prepared;
  }
}

function checkShape(shape: AttentionShape, headDim: number): AttentionShape {
  for (const name of ['batch', 'heads', 'seqQ', 'seqK'] as const) {
    const x = shape[name];
    if (!Number.isInteger(x) || x < 1 || x >= 2 ** 31) throw invalidParameter(name, 'positive integer', x);
  }
  if (shape.headDim !== headDim) throw invalidParameter('headDim', `${headDim} (the kernel's head size)`, shape.headDim);
  return shape;
}

/** Host tensors for {@link attentionOnHost}: f16 as Uint16Array bit patterns, f32 as Float32Array. */
export interface HostAttentionInputs {
  q: Uint16Array | Float32Array; k: Uint16Array | Float32Array; v: Uint16Array | Float32Array;
  /** One entry per (batch, key); non-zero keeps the key. */
  mask?: ArrayLike<number>;
}

/**
 * Convenience for callers holding host arrays: uploads, runs one call and reads the output back
 * (Uint16Array f16 bits or Float32Array, dense (batch, seqQ, heads, headDim)).
 */
export async function attentionOnHost(ctx: GpuContext, shape: AttentionShape, inputs: HostAttentionInputs, options: Partial<FlashAttentionOptions> & EncodeOptions = {}): Promise<Uint16Array | Float32Array> {
  const precision = options.precision ?? (inputs.q instanceof Float32Array ? 'f32' : 'f16');
  const want = precision === 'f16' ? Uint16Array : Float32Array;
  for (const [name, t, seq] of [['q', inputs.q, shape.seqQ], ['k', inputs.k, shape.seqK], ['v', inputs.v, shape.seqK]] as const) {
    if (!(t instanceof want)) throw invalidParameter(name, `${want.name} for ${precision}`, t);
    if (t.length !== shape.batch * seq * shape.heads * shape.headDim) throw invalidParameter(`${name}.length`, `${shape.batch * seq * shape.heads * shape.headDim}`, t.length);
  }
  const fa = await FlashAttention.create(ctx, { ...options, headDim: shape.headDim, precision });
  const usage = GPUBufferUsage.STORAGE;
  const q = ctx.upload(inputs.q, usage);
  const k = ctx.upload(inputs.k, usage);
  const v = ctx.upload(inputs.v, usage);
  const mask = inputs.mask ? ctx.upload(Uint32Array.from(inputs.mask, (x) => (x ? 1 : 0)), usage) : undefined;
  const outBytes = shape.batch * shape.seqQ * shape.heads * shape.headDim * (precision === 'f16' ? 2 : 4);
  const out = ctx.device.createBuffer({ size: Math.ceil(outBytes / 4) * 4, usage: usage | GPUBufferUsage.COPY_SRC, label: 'attention-out' });
  try {
    fa.run(shape, { q: { buffer: q }, k: { buffer: k }, v: { buffer: v }, out: { buffer: out }, ...(mask ? { mask: { buffer: mask } } : {}) }, options);
    const bytes = await ctx.read(out, 0, outBytes);
    return precision === 'f16' ? new Uint16Array(bytes) : new Float32Array(bytes);
  } finally {
    for (const b of [q, k, v, mask, out]) b?.destroy();
    fa.destroy();
  }
}
