/**
 * Mean/std normalisation of RGB bytes, apart from preprocess.ts so that the GPU engine (which
 * normalises on the device through {@link normalizeTable}) does not load sharp/libvips.
 */

/**
 * The value `normalizeInto` gives byte v of channel c, at `[c · 256 + v]` (f32 [3, 256]): engines
 * that normalise byte tiles themselves look values up here, so their input equals this module's.
 */
export function normalizeTable(mean: readonly number[], std: readonly number[]): Float32Array {
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * std[c]!);
    const shift = mean[c]! / std[c]!;
    for (let v = 0; v < 256; v++) table[c * 256 + v] = v * scale - shift;
  }
  return table;
}

/** Interleaved RGB bytes → planar normalised float32 at `out[offset…]`. */
export function normalizeInto(rgb: Uint8Array, size: number, mean: readonly number[], std: readonly number[], out: Float32Array, offset: number): void {
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * std[c]!);
    const shift = mean[c]! / std[c]!;
    const base = offset + c * plane;
    for (let p = 0; p < plane; p++) out[base + p] = rgb[p * 3 + c]! * scale - shift;
  }
}
