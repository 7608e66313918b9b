import { CorruptSlideError } from '../errors.ts';
import type { Codec } from './types.ts';
import { checkSampleLayout, expectedSampleBytes, samplesToRgb } from './samples-to-rgb.ts';

const CLEAR = 256;
const EOI = 257;

/**
 * TIFF LZW (TIFF 6.0 §13): MSB-first codes of 9–12 bits with the "early change" that libtiff
 * writes. Output stops at `limit` bytes, so a hostile stream cannot grow the buffer.
 */
export function lzwDecode(input: Uint8Array, limit: number): Buffer {
  const out = Buffer.allocUnsafe(limit);
  let outLen = 0;
  // dictionary as (prefix code, last byte, length) so entries cost O(1) to add
  const prefix = new Int32Array(4096);
  const suffix = new Uint8Array(4096);
  const length = new Int32Array(4096);
  for (let i = 0; i < 256; i++) { prefix[i] = -1; suffix[i] = i; length[i] = 1; }
  let next = 258;
  let width = 9;
  let old = -1;
  let bitPos = 0;
  const totalBits = input.length * 8;
  const emit = (code: number): number => {
    const len = length[code]!;
    const end = Math.min(outLen + len, limit);
    let c = code;
    for (let p = outLen + len - 1; p >= outLen; p--) {
      if (p < end) out[p] = suffix[c]!;
      c = prefix[c]!;
    }
    const first = out[outLen]!;
    outLen = end;
    return first;
  };
  while (bitPos + width <= totalBits && outLen < limit) {
    let code = 0;
    for (let i = 0; i < width; i++, bitPos++) code = (code << 1) | ((input[bitPos >> 3]! >> (7 - (bitPos & 7))) & 1);
    if (code === EOI) break;
    if (code === CLEAR) { next = 258; width = 9; old = -1; continue; }
    if (old === -1) {
      if (code > 255) throw new Error(`first code after clear is ${code}`);
      emit(code);
      old = code;
      continue;
    }
    let first: number;
    if (code < next) {
      first = emit(code);
    } else if (code === next) {
      // KwKwK case: the new entry is old + first byte of old
      const start = outLen;
      emit(old);
      const f = start < limit ? out[start]! : 0;
      if (outLen < limit) out[outLen++] = f;
      first = f;
    } else {
      throw new Error(`code ${code} beyond dictionary size ${next}`);
    }
    if (next < 4096) {
      prefix[next] = old; suffix[next] = first; length[next] = length[old]! + 1;
      next++;
    }
    // early change: widen one code before the table fills the current width
    if (next + 1 >= 1 << width && width < 12) width++;
    old = code;
  }
  return out.subarray(0, outLen);
}

/** TIFF compression 5. */
export const lzw: Codec = {
  name: 'lzw',
  async decode(data, ctx) {
    checkSampleLayout(ctx);
    let samples: Buffer;
    try {
      samples = lzwDecode(data, expectedSampleBytes(ctx));
    } catch (err) {
      throw new CorruptSlideError(`${ctx.name}: LZW data is corrupt: ${(err as Error).message}`, { cause: err });
    }
    return samplesToRgb(samples, ctx);
  },
};
