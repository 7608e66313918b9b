/**
 * One checked GPU attention call, shared by the tests and `lamina bench attention --check`:
 * fresh random inputs from a seed, an output buffer poisoned with NaN and followed by a guard
 * region, the CPU reference on the f16-rounded inputs (all rows, or a sample for long sequences),
 * and the relative error. NaN anywhere in the compared output makes the error Infinity.
 */
import type { GpuContext } from '../gpu/gpu-context.ts';
import { fromF16Array, toF16Array } from '../gpu/f16.ts';
import { attentionCpu, relativeError } from './flash-attention.cpu.ts';
import { FlashAttention, type AttentionShape } from './flash-attention.ts';
import { mulberry32 } from '../../src/util/prng.ts';

/** Normal(0, sd) values (Box–Muller). */
export function randomNormal(n: number, rand: () => number, sd = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand())) * sd;
    const t = 2 * Math.PI * rand();
    out[i] = r * Math.cos(t);
    if (i + 1 < n) out[i + 1] = r * Math.sin(t);
  }
  return out;
}

export interface CheckOptions {
  seed: number;
  /** Spread of q and k; larger makes peakier softmax rows (and exercises rescaling). @defaultValue 1 */
  spread?: number;
  /** 'random' drops about a quarter of the keys; 'last-batch-empty' also masks every key of the last batch. */
  mask?: 'none' | 'random' | 'last-batch-empty';
  /** Compare only this many query rows per batch (spread over the sequence). @defaultValue all */
  sampleRows?: number;
  guardElements?: number;
  /**
   * Self-attention through three views of one packed buffer (token rows of Q | K | V, row stride
   * 3·H·D), as a ViT's fused QKV projection leaves them; needs seqQ = seqK.
   */
  packed?: boolean;
}

export interface CheckResult {
  relError: number;
  /** Output elements still holding the poison (never written). */
  unwritten: number;
  /** Guard elements after the output that changed. */
  guardClobbered: number;
  /** Non-finite values among the compared outputs. */
  nonFinite: number;
  /** Largest |value| of the fully masked batch (0 when it is all zeros); NaN if not tested. */
  maskedBatchMaxAbs: number;
}

/** Runs `fa` once on fresh random inputs and compares with the CPU reference. */
export async function checkAttention(ctx: GpuContext, fa: FlashAttention, shape: AttentionShape, options: CheckOptions): Promise<CheckResult> {
  const rand = mulberry32(options.seed);
  const { batch, heads, seqQ, seqK, headDim } = shape;
  const f16 = fa.precision === 'f16';
  const spread = options.spread ?? 1;
  const make = (n: number, sd: number) => {
    const x = randomNormal(n, rand, sd);
    return f16 ? toF16Array(x) : x;
  };
  const q = make(batch * seqQ * heads * headDim, spread);
  const k = make(batch * seqK * heads * headDim, spread);
  const v = make(batch * seqK * heads * headDim, 1);
  let mask: Uint32Array | undefined;
  if (options.mask && options.mask !== 'none') {
    mask = new Uint32Array(batch * seqK).map(() => (rand() < 0.75 ? 1 : 0));
    for (let b = 0; b < batch; b++) mask[b * seqK + Math.floor(rand() * seqK)] = 1; // at least one key kept
    if (options.mask === 'last-batch-empty') mask.fill(0, (batch - 1) * seqK);
  }
  const usage = GPUBufferUsage.STORAGE;
  const rowElems = heads * headDim;
  let views: { buffer: GPUBuffer; offset?: number; rowStride?: number }[];
  let buffers: GPUBuffer[];
  if (options.packed) {
    if (seqQ !== seqK) throw new Error('packed QKV views need seqQ = seqK');
    const all = f16 ? new Uint16Array(3 * q.length) : new Float32Array(3 * q.length);
    for (let t = 0; t < batch * seqQ; t++) {
      for (const [i, x] of [q, k, v].entries()) all.set(x.subarray(t * rowElems, (t + 1) * rowElems) as never, (3 * t + i) * rowElems);
    }
    buffers = [ctx.upload(all, usage)];
    views = [0, 1, 2].map((i) => ({ buffer: buffers[0]!, offset: i * rowElems, rowStride: 3 * rowElems }));
  } else {
    buffers = [q, k, v].map((x) => ctx.upload(x, usage));
    views = buffers.map((buffer) => ({ buffer }));
  }
  const maskBuffer = mask ? ctx.upload(mask, usage) : undefined;
  const outElems = batch * seqQ * heads * headDim;
  const guard = options.guardElements ?? 1024;
  const poison = f16 ? new Uint16Array(outElems + guard).fill(0x7e00) : new Float32Array(outElems + guard).fill(NaN);
  const out = ctx.upload(poison, usage | GPUBufferUsage.COPY_SRC);
  try {
    fa.run(shape, {
      q: views[0]!, k: views[1]!, v: views[2]!,
      out: { buffer: out, offset: 0 }, ...(maskBuffer ? { mask: { buffer: maskBuffer } } : {}),
    });
    const bytes = await ctx.read(out, 0, poison.byteLength);
    const raw = f16 ? new Uint16Array(bytes) : new Uint32Array(bytes);
    const poisonBits = f16 ? 0x7e00 : new Uint32Array(poison.buffer, 0, 1)[0]!;
    let unwritten = 0;
    for (let i = 0; i < outElems; i++) if (raw[i] === poisonBits) unwritten++;
    let guardClobbered = 0;
    for (let i = outElems; i < outElems + guard; i++) if (raw[i] !== poisonBits) guardClobbered++;
    const got = f16 ? fromF16Array(new Uint16Array(bytes, 0, outElems)) : new Float32Array(bytes, 0, outElems);
    const asNumbers = (x: Uint16Array | Float32Array) => (x instanceof Uint16Array ? fromF16Array(x) : x);
    const rows = options.sampleRows && options.sampleRows < seqQ
      ? Array.from({ length: options.sampleRows }, (_, i) => Math.floor((i * (seqQ - 1)) / Math.max(1, options.sampleRows! - 1)))
      : undefined;
    const ref = attentionCpu(shape, { q: asNumbers(q), k: asNumbers(k), v: asNumbers(v), ...(mask ? { mask } : {}) }, rows ? { rows } : {});
    const rowList = rows ?? Array.from({ length: seqQ }, (_, i) => i);
    const picked = new Float32Array(ref.length);
    for (let b = 0; b < batch; b++) {
      rowList.forEach((row, ri) => picked.set(got.subarray((b * seqQ + row) * rowElems, (b * seqQ + row + 1) * rowElems), (b * rowList.length + ri) * rowElems));
    }
    let nonFinite = 0;
    for (const x of picked) if (!Number.isFinite(x)) nonFinite++;
    let maskedBatchMaxAbs = NaN;
    if (options.mask === 'last-batch-empty') {
      maskedBatchMaxAbs = 0;
      for (let i = (batch - 1) * seqQ * rowElems; i < outElems; i++) maskedBatchMaxAbs = Math.max(maskedBatchMaxAbs, Math.abs(got[i]!));
    }
    return { relError: relativeError(picked, ref), unwritten, guardClobbered, nonFinite, maskedBatchMaxAbs };
  } finally {
    for (const b of [...buffers, maskBuffer, out]) b?.destroy();
  }
}
