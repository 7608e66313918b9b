/**
 * The ViT forward pass on our WebGPU kernels: weights uploaded once (f16 where the adapter has
 * shader-f16, else f32), and per (batch, input size) a plan — activation buffers and every
 * dispatch prepared — replayed with one command encoder per forward: patch embedding (im2col +
 * GEMM), tokens + positions, per block LayerNorm → QKV GEMM → flash attention → projection GEMM
 * with the residual and layer scale fused → LayerNorm → fc1 GEMM + GELU → fc2 GEMM + residual, the
 * final LayerNorm, and one copy back. No host round trip inside a forward.
 *
 * `forward` may be called again before an earlier call has resolved: the queue runs submissions in
 * order, so consecutive forwards of a plan share its input and activation buffers safely, and each
 * call in flight copies its output into a staging buffer of its own (a ring of up to
 * {@link STAGING_RING} per plan). Call N+1's upload and submit then happen while the GPU computes
 * call N, and N's readback and decode while it computes N+1.
 */
import { DeviceError, invalidParameter } from '../errors.ts';
import type { GpuContext } from '../../kernels/gpu/gpu-context.ts';
import { decodeF16Into, toF16Array } from '../../kernels/gpu/f16.ts';
import { destroyDispatch, recordDispatch, type Dispatch } from '../../kernels/dispatch/dispatch.ts';
import { Matmul } from '../../kernels/matmul/matmul.ts';
import { LayerNorm } from '../../kernels/layernorm/layernorm.ts';
import { convWeightToGemm, im2colBytes, PatchEmbed } from '../../kernels/patch-embed/patch-embed.ts';
import { VitTokens } from '../../kernels/vit-tokens/vit-tokens.ts';
import { positionTable, type PosInterpolation } from '../../kernels/vit-tokens/pos-embed.ts';
import { FlashAttention, type AttentionVariant } from '../../kernels/flash-attention/flash-attention.ts';
import { variantKey } from '../../kernels/flash-attention/flash-attention-wgsl.ts';
import { GEMM_ATTENTION_MAX_SEQ, GemmAttention, gemmAttentionBytes, type GemmAttentionPlan } from '../../kernels/matmul/gemm-attention.ts';
import type { VitConfig, VitWeights } from './vit-config.ts';
import type { EngineTimings } from './types.ts';
import { Lease } from '../util/lease.ts';

export interface VitModelOptions {
  /** @defaultValue 'f16' when the adapter has shader-f16, else 'f32' */
  precision?: 'f16' | 'f32';
  /** Kernel paths; 'portable' forces the non-tensor-core kernels. @defaultValue 'auto' */
  path?: 'auto' | 'portable';
  /** Attention kernel path, when it should differ from `path`. @defaultValue path */
  attentionPath?: 'auto' | 'portable';
  /** Position-embedding resize for inputs larger than the trained grid. @defaultValue 'bicubic' */
  interpolation?: PosInterpolation;
  /** An explicit flash-attention kernel shape (tests: the emulated subgroup-matrix path). */
  attentionVariant?: AttentionVariant;
  /**
   * How attention runs. 'flash': our flash-attention kernel at every length. 'gemm': for
   * sequences up to {@link GEMM_ATTENTION_MAX_SEQ} tokens (and ≤ 1 GiB of scores), Q·Kᵀ and P·V as
   * batched GEMMs with the S×S scores materialised (kernels/matmul/gemm-attention.ts); flash beyond.
   * 'auto': 'gemm' only where it runs on tensor cores, passes its self-check, and the flash kernel's
   * own tensor-core path is unavailable (it failed its self-check); else 'flash'.
   * @defaultValue 'auto'
   */
  attention?: 'auto' | 'flash' | 'gemm';
  /** Subgroup-matrix tiling of the block GEMMs (`BMxBNxBK-sgMxN-s1|s2[-wd]`); benchmarks. @defaultValue DEFAULT_GEMM_SPEC */
  gemm?: string;
}

/**
 * Staging buffers per plan: forwards in flight at once (a further call waits for a free one). Two
 * keep the GPU busy (one computing, one being read back); a third absorbs a late unpack.
 */
export const STAGING_RING = 3;

/** Most bytes of attention scores a plan may hold before falling back to flash attention. */
const GEMM_ATTENTION_MAX_BYTES = 2 ** 30;

/** Output of one forward: f32 host arrays (the destination's, when one was given). */
export interface VitForwardResult {
  /** [images, D] class token after the final norm. */
  embeddings: Float32Array;
  /** [images, grid², D] patch tokens after the final norm, when asked for. */
  tokens?: Float32Array;
  /** Host ms before the GPU, waiting for it, and decoding its output. */
  timings: EngineTimings;
}

/**
 * Where `forward` writes its output instead of fresh arrays: image `image` onwards of bigger
 * result arrays (`tokens` needed when tokens are asked for), so a split batch is decoded once,
 * straight into its final place.
 */
export interface ForwardDestination {
  embeddings: Float32Array;
  tokens?: Float32Array;
  image: number;
}

interface Block {
  norm1: [GPUBuffer, GPUBuffer]; norm2: [GPUBuffer, GPUBuffer];
  qkvW: GPUBuffer; qkvB: GPUBuffer; projW: GPUBuffer; projB: GPUBuffer; ls1?: GPUBuffer;
  fc1W: GPUBuffer; fc1B: GPUBuffer; fc2W: GPUBuffer; fc2B: GPUBuffer; ls2?: GPUBuffer;
}

type Step = { kind: 'dispatch'; d: Dispatch; owned?: false } | { kind: 'attention' };

interface Plan {
  key: string; images: number; size: number; seq: number; grid: number; withTokens: boolean; attention?: GemmAttentionPlan;
  buffers: GPUBuffer[]; pixels: GPUBuffer; qkv: GPUBuffer; att: GPUBuffer; out: GPUBuffer;
  outBytes: number; steps: Step[];
  /** Staging buffers made so far (≤ STAGING_RING, made on demand: a serial caller holds one), the idle ones, and calls waiting for one. */
  staging: GPUBuffer[]; idle: GPUBuffer[]; waiting: ((b: GPUBuffer) => void)[];
}

export class VitGpuModel {
  /** A plan evicted while forwards run on it is freed by the last of them. */
  private readonly plans = new Map<string, Lease<Plan>>();
  private readonly owned: GPUBuffer[] = [];
  /** f32 [3, 256] byte → normalised value per channel, for byte input (`setByteInput`). */
  private byteTable?: GPUBuffer;

  private constructor(
    readonly ctx: GpuContext, readonly config: VitConfig, readonly precision: 'f16' | 'f32', private readonly options: VitModelOptions,
    private readonly w: { patchW: GPUBuffer; patchB: GPUBuffer; prefix: GPUBuffer; norm: [GPUBuffer, GPUBuffer]; blocks: Block[]; pos: Float32Array },
    private readonly k: { patch: PatchEmbed; qkv: Matmul; proj: Matmul; fc1: Matmul; fc2: Matmul; ln: LayerNorm; tokens: VitTokens; attention: FlashAttention; gemmAttention?: GemmAttention },
  ) {}

  /** Uploads the weights and compiles the kernels. */
  static async create(ctx: GpuContext, config: VitConfig, weights: VitWeights, options: VitModelOptions = {}): Promise<VitGpuModel> {
    const precision = options.precision ?? (ctx.capabilities.shaderF16 ? 'f16' : 'f32');
    if (precision === 'f16' && !ctx.capabilities.shaderF16) throw new DeviceError(`${ctx.describe()} has no shader-f16; use precision 'f32'`);
    const { dim: D, mlpHidden: H, numHeads } = config;
    const headDim = D / numHeads;
    const path = options.path ?? 'auto';
    const owned: GPUBuffer[] = [];
    const get = (name: string) => {
      const t = weights.get(name);
      if (!t) throw new DeviceError(`weight ${name} missing`);
      return t.data;
    };
    const up = (values: Float32Array, label: string) => {
      const b = ctx.upload(precision === 'f16' ? toF16Array(values) : values, GPUBufferUsage.STORAGE, label);
      owned.push(b);
      return b;
    };
    // Linear weights [out, in] → [in, out] for the GEMM's W[K, N].
    const linear = (name: string) => {
      const t = weights.get(name)!;
      const [o, i] = t.shape as [number, number];
      const tr = new Float32Array(o * i);
      for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) tr[b * o + a] = t.data[a * i + b]!;
      return up(tr, name);
    };
    const prefixCount = 1 + config.numRegisterTokens;
    const prefixTokens = new Float32Array(prefixCount * D);
    prefixTokens.set(get('cls_token').subarray(0, D));
    if (config.numRegisterTokens) prefixTokens.set(get('reg_token'), D);
    const blocks: Block[] = [];
    for (let b = 0; b < config.depth; b++) {
      const p = `blocks.${b}.`;
      blocks.push({
        norm1: [up(get(`${p}norm1.weight`), 'n1w'), up(get(`${p}norm1.bias`), 'n1b')],
        norm2: [up(get(`${p}norm2.weight`), 'n2w'), up(get(`${p}norm2.bias`), 'n2b')],
        qkvW: linear(`${p}attn.qkv.weight`), qkvB: up(config.qkvBias ? get(`${p}attn.qkv.bias`) : new Float32Array(3 * D), 'qkvb'),
        projW: linear(`${p}attn.proj.weight`), projB: up(get(`${p}attn.proj.bias`), 'projb'),
        fc1W: linear(`${p}mlp.fc1.weight`), fc1B: up(get(`${p}mlp.fc1.bias`), 'fc1b'),
        fc2W: linear(`${p}mlp.fc2.weight`), fc2B: up(get(`${p}mlp.fc2.bias`), 'fc2b'),
        ...(config.layerScale ? { ls1: up(get(`${p}ls1.gamma`), 'ls1'), ls2: up(get(`${p}ls2.gamma`), 'ls2') } : {}),
      });
    }
    const w = {
      patchW: up(convWeightToGemm(get('patch_embed.proj.weight'), D, config.patchSize), 'patch-w'),
      patchB: up(get('patch_embed.proj.bias'), 'patch-b'),
      prefix: up(prefixTokens, 'prefix-tokens'),
      norm: [up(get('norm.weight'), 'norm-w'), up(get('norm.bias'), 'norm-b')] as [GPUBuffer, GPUBuffer],
      blocks, pos: get('pos_embed').slice(),
    };
    const mm = (N: number, K: number, o: { gelu?: boolean; residual?: boolean }) => Matmul.create(ctx, { precision, N, K, path, spec: options.gemm, ...o });
    const [patch, qkv, proj, fc1, fc2, ln, tokens, attention] = await Promise.all([
      PatchEmbed.create(ctx, { precision, patchSize: config.patchSize, dim: D, path }),
      mm(3 * D, D, {}), mm(D, D, { residual: true }), mm(H, D, { gelu: true }), mm(D, H, { residual: true }),
      LayerNorm.create(ctx, precision), VitTokens.create(ctx, precision),
      FlashAttention.create(ctx, { headDim, precision, path: (options.attentionPath ?? path) === 'portable' ? 'portable' : 'auto', ...(options.attentionVariant ? { variant: options.attentionVariant } : {}) }),
    ]);
    const mode = options.attention ?? 'auto';
    if (mode !== 'auto' && mode !== 'flash' && mode !== 'gemm') throw invalidParameter('attention', "'auto', 'flash' or 'gemm'", mode);
    let gemmAttention: GemmAttention | undefined;
    if (mode === 'gemm' || (mode === 'auto' && attention.variant.path === 'portable' && qkv.variant.path === 'subgroup-matrix')) {
      gemmAttention = await GemmAttention.create(ctx, { headDim, precision, path });
      if (mode === 'auto' && !(gemmAttention.tensorCores && await gemmAttentionVerified(ctx, gemmAttention))) {
        gemmAttention.destroy();
        gemmAttention = undefined;
      }
    }
    const model = new VitGpuModel(ctx, config, precision, options, w, { patch, qkv, proj, fc1, fc2, ln, tokens, attention, gemmAttention });
    model.owned.push(...owned);
    return model;
  }

  /** Kernel names, for logs and benchmark headers. */
  describeKernels(): string {
    const ga = this.k.gemmAttention;
    return `${this.precision}: ${this.k.qkv.name}, ${ga ? `attention ≤ ${GEMM_ATTENTION_MAX_SEQ} tokens: ${ga.name}, longer: ` : ''}${this.k.attention.describe()}`;
  }

  /**
   * Runs `images` images of `size` px (NCHW f32, normalised; size a multiple of the patch size,
   * position embeddings resized when it differs from the trained size).
   */
  async forward(pixels: Float32Array | Uint8Array, images: number, size: number, withTokens = false, into?: ForwardDestination): Promise<VitForwardResult> {
    const bytes = pixels instanceof Uint8Array;
    if (bytes && !this.byteTable) throw new DeviceError('byte input needs setByteInput first');
    if (pixels.length !== images * 3 * size * size) throw invalidParameter('pixels.length', `${images} × 3 × ${size}²`, pixels.length);
    const lease = this.plan(images, size, withTokens, bytes);
    this.ctx.checkAlive();
    const plan = lease.acquire();
    try {
      const tw = performance.now();
      const staging = plan.idle.pop() ?? this.newStaging(plan) ?? await new Promise<GPUBuffer>((resolve) => plan.waiting.push(resolve));
      const t0 = performance.now();
      try {
        this.ctx.checkAlive();
        // From here to submit nothing awaits: this call's upload, passes and copy reach the queue
        // as one unit, after every earlier call's and before any later call's.
        // writeBuffer takes whole words: bytes of an odd total are padded.
        const data = bytes && pixels.byteLength % 4 ? padTo4(pixels) : pixels;
        this.ctx.device.queue.writeBuffer(plan.pixels, 0, data.buffer, data.byteOffset, data.byteLength);
        const enc = this.ctx.device.createCommandEncoder({ label: 'vit-forward' });
        this.record(enc, plan);
        enc.copyBufferToBuffer(plan.out, 0, staging, 0, plan.outBytes);
        this.ctx.device.queue.submit([enc.finish()]);
        const t1 = performance.now();
        await staging.mapAsync(GPUMapMode.READ, 0, plan.outBytes);
        const t2 = performance.now();
        try {
          // Reads only this call's staging buffer, which no other call touches until it is released.
          const out = this.unpack(staging.getMappedRange(0, plan.outBytes), plan, withTokens, into);
          return { ...out, timings: { upload: t1 - t0, gpuWait: t2 - t1 + (t0 - tw), readback: performance.now() - t2 } };
        } finally {
          staging.unmap();
        }
      } finally {
        const next = plan.waiting.shift();
        if (next) next(staging);
        else plan.idle.push(staging);
      }
    } finally {
      lease.release();
    }
  }

  /** A further staging buffer for `plan` while it has fewer than {@link STAGING_RING}; else undefined. */
  private newStaging(plan: Plan): GPUBuffer | undefined {
    if (plan.staging.length >= STAGING_RING) return undefined;
    const b = this.ctx.device.createBuffer({ size: Math.ceil(plan.outBytes / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'vit-staging' });
    plan.staging.push(b);
    return b;
  }

  /**
   * The mapped output → f32 class embeddings (and patch tokens), decoded straight from the mapped
   * range into the result arrays: no copy of the range and no intermediate all-rows array.
   */
  private unpack(mapped: ArrayBuffer, plan: Plan, withTokens: boolean, into?: ForwardDestination): Omit<VitForwardResult, 'timings'> {
    const D = this.config.dim, images = plan.images;
    const f16 = this.precision === 'f16';
    const bits = f16 ? new Uint16Array(mapped) : undefined;
    const floats = f16 ? undefined : new Float32Array(mapped);
    const copy = (from: number, count: number, out: Float32Array, to: number) => {
      if (bits) decodeF16Into(bits, from, count, out, to);
      else out.set(floats!.subarray(from, from + count), to);
    };
    const at = into?.image ?? 0;
    const embeddings = into?.embeddings ?? new Float32Array(images * D);
    if (!withTokens) {
      copy(0, images * D, embeddings, at * D);
      return { embeddings };
    }
    const prefix = 1 + this.config.numRegisterTokens, n = plan.grid * plan.grid;
    const tokens = into?.tokens ?? new Float32Array(images * n * D);
    for (let b = 0; b < images; b++) {
      copy(b * plan.seq * D, D, embeddings, (at + b) * D);
      copy((b * plan.seq + prefix) * D, n * D, tokens, (at + b) * n * D);
    }
    return { embeddings, tokens };
  }

  /**
   * Submits `repeats` forwards of the same plan back to back (pixels already on the GPU) and
   * waits: GPU throughput without host transfers, for benchmarks. `attentionOnly` records only the
   * attention steps of every block (their share of the forward, for profiles).
   */
  async replay(images: number, size: number, repeats: number, attentionOnly = false): Promise<void> {
    const plan = this.plan(images, size, false).value;
    for (let i = 0; i < repeats; i++) {
      const enc = this.ctx.device.createCommandEncoder({ label: 'vit-replay' });
      this.record(enc, plan, attentionOnly);
      this.ctx.device.queue.submit([enc.finish()]);
    }
    await this.ctx.sync();
  }

  private record(enc: GPUCommandEncoder, plan: Plan, attentionOnly = false): void {
    const D = this.config.dim, heads = this.config.numHeads;
    let pass: GPUComputePassEncoder | undefined;
    for (const s of plan.steps) {
      // the GEMM attention's dispatches are the shared (not owned) ones
      if (attentionOnly && s.kind === 'dispatch' && s.owned !== false) continue;
      if (s.kind === 'dispatch') {
        pass ??= enc.beginComputePass();
        recordDispatch(pass, s.d);
      } else {
        pass?.end();
        pass = undefined;
        this.k.attention.encode(enc, { batch: plan.images, heads, seqQ: plan.seq, seqK: plan.seq, headDim: D / heads }, {
          q: { buffer: plan.qkv, offset: 0, rowStride: 3 * D }, k: { buffer: plan.qkv, offset: D, rowStride: 3 * D },
          v: { buffer: plan.qkv, offset: 2 * D, rowStride: 3 * D }, out: { buffer: plan.att },
        });
      }
    }
    pass?.end();
  }

  /**
   * Lets `forward` take raw tiles: interleaved RGB bytes [images, size, size, 3], normalised on the
   * GPU through `table` (f32 [3, 256], preprocess.ts `normalizeTable`), so the columns equal those
   * of the host-normalised f32 input exactly.
   */
  setByteInput(table: Float32Array): void {
    if (table.length !== 768) throw invalidParameter('table.length', '3 × 256', table.length);
    if (this.byteTable) { // plans hold the old table in their bind groups
      for (const p of this.plans.values()) void p.retire();
      this.plans.clear();
      this.byteTable.destroy();
    }
    this.byteTable = this.ctx.upload(table, GPUBufferUsage.STORAGE, 'byte-normalise-table');
  }

  private plan(images: number, size: number, withTokens: boolean, bytes = false): Lease<Plan> {
    const c = this.config;
    if (!Number.isInteger(images) || images < 1) throw invalidParameter('images', 'positive integer', images);
    if (!Number.isInteger(size) || size < c.patchSize || size % c.patchSize) throw invalidParameter('size', `positive multiple of the patch size ${c.patchSize}`, size);
    const key = `${images}x${size}${withTokens ? 't' : ''}${bytes ? 'u8' : ''}`;
    const cached = this.plans.get(key);
    if (cached) return cached;
    if (this.plans.size >= 3) {
      const [oldKey, old] = this.plans.entries().next().value as [string, Lease<Plan>];
      void old.retire();
      this.plans.delete(oldKey);
    }
    const e = this.precision === 'f16' ? 2 : 4;
    const D = c.dim, H = c.mlpHidden, prefix = 1 + c.numRegisterTokens;
    const grid = size / c.patchSize, n = grid * grid, seq = prefix + n, rows = images * seq;
    const dev = this.ctx.device;
    const buffers: GPUBuffer[] = [];
    const buf = (bytes: number, label: string, extra = 0) => {
      const b = dev.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: GPUBufferUsage.STORAGE | extra, label });
      buffers.push(b);
      return b;
    };
    const pixels = buf(images * 3 * size * size * (bytes ? 1 : 4), 'pixels', GPUBufferUsage.COPY_DST);
    const cols = buf(im2colBytes(images, size, c.patchSize, this.precision), 'cols');
    const patches = buf(images * n * D * e, 'patches');
    const x = buf(rows * D * e, 'x');
    const h = buf(rows * D * e, 'h');
    const qkv = buf(rows * 3 * D * e, 'qkv');
    const att = buf(rows * D * e, 'att');
    const mlp = buf(rows * H * e, 'mlp');
    const outRows = withTokens ? rows : images;
    const outBytes = outRows * D * e;
    const out = buf(outBytes, 'out', GPUBufferUsage.COPY_SRC);
    const posValues = positionTable(this.w.pos, D, prefix, c.posEmbedIncludesPrefix, grid, this.options.interpolation ?? 'bicubic');
    const pos = this.ctx.upload(this.precision === 'f16' ? toF16Array(posValues) : posValues, GPUBufferUsage.STORAGE, 'pos');
    buffers.push(pos);

    const steps: Step[] = [];
    const add = (d: Dispatch) => steps.push({ kind: 'dispatch', d });
    const ga = this.k.gemmAttention;
    const heads = c.numHeads;
    const useGemm = ga !== undefined && seq <= GEMM_ATTENTION_MAX_SEQ && gemmAttentionBytes({ images, heads, seq }, this.precision) <= GEMM_ATTENTION_MAX_BYTES;
    const attentionPlan = useGemm ? ga.plan({ images, heads, seq }, qkv, att) : undefined;
    this.k.patch.prepare(images, size, { pixels, weight: this.w.patchW, bias: this.w.patchB, cols, out: patches, ...(bytes ? { table: this.byteTable! } : {}) }).forEach(add);
    add(this.k.tokens.prepare({ images, seq, prefix, D }, { patches, prefixTokens: this.w.prefix, pos, out: x }));
    const eps = c.layerNormEps;
    for (const b of this.w.blocks) {
      add(this.k.ln.prepare({ rows, D, eps }, { x, gamma: b.norm1[0], beta: b.norm1[1], out: h }));
      add(this.k.qkv.prepare({ M: rows, N: 3 * D, K: D }, { x: h, w: b.qkvW, bias: b.qkvB, out: qkv }));
      // The GEMM attention's dispatches are shared by every block (same buffers); freed once.
      if (attentionPlan) for (const d of attentionPlan.dispatches) steps.push({ kind: 'dispatch', d, owned: false });
      else steps.push({ kind: 'attention' });
      add(this.k.proj.prepare({ M: rows, N: D, K: D }, { x: att, w: b.projW, bias: b.projB, gamma: b.ls1, out: x }));
      add(this.k.ln.prepare({ rows, D, eps }, { x, gamma: b.norm2[0], beta: b.norm2[1], out: h }));
      add(this.k.fc1.prepare({ M: rows, N: H, K: D }, { x: h, w: b.fc1W, bias: b.fc1B, out: mlp }));
      add(this.k.fc2.prepare({ M: rows, N: D, K: H }, { x: mlp, w: b.fc2W, bias: b.fc2B, gamma: b.ls2, out: x }));
    }
    add(this.k.ln.prepare(withTokens ? { rows, D, eps } : { rows: images, D, eps, step: seq }, { x, gamma: this.w.norm[0], beta: this.w.norm[1], out }));
    const plan: Plan = {
      key, images, size, seq, grid, withTokens, buffers, pixels, qkv, att, out, outBytes, steps, attention: attentionPlan,
      staging: [], idle: [], waiting: [],
    };
    const lease = new Lease(plan, (p) => this.free(p), { name: 'a ViT forward plan' });
    this.plans.set(key, lease);
    return lease;
  }

  private free(plan: Plan): void {
    for (const s of plan.steps) if (s.kind === 'dispatch' && s.owned !== false) destroyDispatch(s.d);
    plan.attention?.destroy();
    for (const b of plan.buffers) b.destroy();
    for (const b of plan.staging) b.destroy();
    plan.staging.length = 0;
    plan.idle.length = 0;
  }

  /** Frees plans, weights and kernel caches (the context stays open). */
  destroy(): void {
    this.byteTable?.destroy();
    this.byteTable = undefined;
    for (const p of this.plans.values()) this.free(p.value);
    this.plans.clear();
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
    for (const m of [this.k.patch, this.k.qkv, this.k.proj, this.k.fc1, this.k.fc2]) m.destroy();
    this.k.attention.destroy();
    this.k.gemmAttention?.destroy();
  }

  /** Which attention a forward of this many tokens per image uses (logs, benchmarks). */
  attentionFor(images: number, size: number): string {
    const plan = this.plan(images, size, false).value;
    return plan.attention ? this.k.gemmAttention!.name : variantKey(this.k.attention.variantFor(plan.seq));
  }
}

function padTo4(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(b.length / 4) * 4);
  out.set(b);
  return out;
}

const gemmAttentionVerdicts = new WeakMap<GpuContext, boolean>();

/** The GEMM attention once per context on a small random case against the CPU reference. */
async function gemmAttentionVerified(ctx: GpuContext, ga: GemmAttention): Promise<boolean> {
  let ok = gemmAttentionVerdicts.get(ctx);
  if (ok === undefined) {
    const { checkGemmAttention } = await import('../../kernels/matmul/gemm-attention-check.ts');
    const err = await checkGemmAttention(ctx, ga, { images: 2, heads: 3, seq: 37 }, 42).catch(() => Infinity);
    ok = err <= 1e-2;
    if (!ok) process.emitWarning(`gemm-attention: relative error ${err} against the CPU reference on ${ctx.describe()}; using flash attention`);
    gemmAttentionVerdicts.set(ctx, ok);
  }
  return ok;
}
