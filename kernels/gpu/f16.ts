/**
 * IEEE 754 half-precision conversion on the host. Node 20 has no Float16Array, so f16 tensors
 * travel as Uint16Array bit patterns; these helpers convert them with round-to-nearest-even,
 * the rounding the GPU's own f32→f16 conversion uses.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bits of the f16 nearest to `value` (ties to even; overflow → ±Inf; NaN stays NaN). */
export function toF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half: shift the mantissa (with its implicit 1) right, rounding to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1))) h += 1;
    return sign | h;
  }
  const rest = mant & 0x1fff;
  let h = (e << 10) | (mant >>> 13);
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h += 1; // may carry into the exponent: correct
  return sign | h;
}

/** The number an f16 bit pattern stands for. */
export function fromF16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Rounds every element to f16 bits. */
export function toF16Array(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toF16Bits(values[i]!);
  return out;
}

let decodeTable: Float32Array | undefined;

/**
 * Every f16 bit pattern's f32 value (256 KiB, built once): a table load per element instead of
 * `fromF16Bits`'s branches and power, which made reading back a batch's patch tokens (millions of
 * values) a host bottleneck of the WebGPU engine.
 */
export function f16DecodeTable(): Float32Array {
  if (!decodeTable) {
    decodeTable = new Float32Array(0x10000);
    for (let b = 0; b < 0x10000; b++) decodeTable[b] = fromF16Bits(b);
  }
  return decodeTable;
}

/** Expands f16 bits to f32 values. */
export function fromF16Array(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  decodeF16Into(bits, 0, bits.length, out, 0);
  return out;
}

/** Expands `count` f16 values from `bits[from…]` into `out[to…]` (same values as `fromF16Bits`). */
export function decodeF16Into(bits: Uint16Array, from: number, count: number, out: Float32Array, to: number): void {
  const table = f16DecodeTable();
  for (let i = 0; i < count; i++) out[to + i] = table[bits[from + i]!]!;
}
