/**
 * Test and `--check` helpers shared by the kernels: host ↔ GPU tensors in either precision,
 * output buffers poisoned with NaN (or filled with a given start value) and followed by a guard
 * region of sentinels, and the check that the guard survived.
 */
import type { GpuContext } from '../gpu/gpu-context.ts';
import { fromF16Array, toF16Array } from '../gpu/f16.ts';
import { mulberry32 } from '../../src/util/prng.ts';

export type Precision = 'f16' | 'f32';

/** Elements of sentinel after each checked output. */
export const GUARD = 64;
const SENTINEL_F16 = 0x7bff; // 65504
const SENTINEL_F32 = 1234.5;

/** Values as the GPU will see them after storage in `precision` (f16 rounding). */
export function roundTo(values: Float32Array, precision: Precision): Float32Array {
  return precision === 'f16' ? fromF16Array(toF16Array(values)) : values;
}

/** Uploads values as a storage tensor in `precision`. */
export function uploadTensor(ctx: GpuContext, values: Float32Array, precision: Precision, label = 'tensor'): GPUBuffer {
  return ctx.upload(precision === 'f16' ? toF16Array(values) : values, GPUBufferUsage.STORAGE, label);
}

/** An output of `elems` elements (NaN, or `init`) followed by a guard region. */
export function guardedOutput(ctx: GpuContext, elems: number, precision: Precision, init?: Float32Array): GPUBuffer {
  const total = elems + GUARD;
  if (precision === 'f16') {
    const bits = new Uint16Array(total + (total % 2)).fill(0x7e00);
    if (init) bits.set(toF16Array(init));
    bits.fill(SENTINEL_F16, elems);
    return ctx.upload(bits, GPUBufferUsage.STORAGE, 'guarded-out');
  }
  const f = new Float32Array(total).fill(NaN);
  if (init) f.set(init);
  f.fill(SENTINEL_F32, elems);
  return ctx.upload(f, GPUBufferUsage.STORAGE, 'guarded-out');
}

/** Reads a guarded output; throws when a guard element was overwritten. */
export async function readGuarded(ctx: GpuContext, buffer: GPUBuffer, elems: number, precision: Precision): Promise<Float32Array> {
  const bytes = await ctx.read(buffer);
  if (precision === 'f16') {
    const bits = new Uint16Array(bytes);
    for (let i = elems; i < elems + GUARD; i++) if (bits[i] !== SENTINEL_F16) throw new Error(`guard element ${i - elems} after the output was overwritten`);
    return fromF16Array(bits.subarray(0, elems));
  }
  const f = new Float32Array(bytes);
  for (let i = elems; i < elems + GUARD; i++) if (f[i] !== SENTINEL_F32) throw new Error(`guard element ${i - elems} after the output was overwritten`);
  return f.slice(0, elems);
}

/** Count of NaN values (unwritten poisoned outputs). */
export function countNaN(values: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (Number.isNaN(values[i]!)) n++;
  return n;
}

/** Deterministic uniform [-a, a) values (mulberry32). */
export function randomUniform(n: number, seed: number, a = 1): Float32Array {
  const next = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() * 2 - 1) * a;
  return out;
}
