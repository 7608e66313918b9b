/**
 * Byte-level binary16 / bfloat16 packing for weight files (Node 20 has no Float16Array). The
 * per-value conversion (round to nearest, ties to even; overflow to ±Infinity, as numpy's
 * `astype(float16)` does) is the one in kernels/gpu/f16.ts, shared with the GPU kernels.
 */
import { fromF16Bits, toF16Bits } from '../../kernels/gpu/f16.ts';

/** Packs float32 values into little-endian binary16 bytes. */
export function encodeFloat16(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setUint16(i * 2, toF16Bits(values[i]!), true);
  return out;
}

/** Unpacks little-endian binary16 bytes into float32. */
export function decodeFloat16(bytes: Uint8Array): Float32Array {
  const n = bytes.length >>> 1;
  const out = new Float32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) out[i] = fromF16Bits(view.getUint16(i * 2, true));
  return out;
}

/** Unpacks little-endian bfloat16 bytes (the top half of a float32) into float32. */
export function decodeBfloat16(bytes: Uint8Array): Float32Array {
  const n = bytes.length >>> 1;
  const bits = new Uint32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
  return new Float32Array(bits.buffer);
}

/** Rounds every value to the nearest binary16 in place, so f16 storage loses nothing afterwards. */
export function roundToFloat16(values: Float32Array): Float32Array {
  for (let i = 0; i < values.length; i++) values[i] = fromF16Bits(toF16Bits(values[i]!));
  return values;
}
