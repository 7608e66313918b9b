/**
 * The one seeded pseudo-random generator of Lamina's tests, benchmarks and kernel checks.
 * Dependency-free so that every layer (kernels, src, bench, test) may import it.
 */

/**
 * mulberry32: a 32-bit-state generator, uniform in [0, 1) with 2^-32 resolution.
 * The same seed always yields the same sequence, so a seeded test or benchmark replays exactly.
 * Not for anything secret.
 * @param seed Any number; only its low 32 bits (as unsigned) are used.
 * @returns A function returning the next value of the stream on each call.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
