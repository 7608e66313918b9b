// Shared by the kNN tests: random embeddings and the worst relative difference of two score arrays.
import { gaussian } from '../../src/scoring/linalg.ts';
import { mulberry32 } from '../../src/util/prng.ts';

/** `n` rows of `dim` standard normal values plus `offset` (norms far above the distances when large). */
export function rows(n: number, dim: number, seed: number, offset = 0): Float32Array {
  const g = gaussian(mulberry32(seed));
  return Float32Array.from({ length: n * dim }, () => offset + g());
}

/** Largest |a − b| / |a| over the elements (a's zeros count as 1e-12). */
export function maxRel(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length) throw new Error(`${a.length} vs ${b.length} scores`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / Math.max(1e-12, Math.abs(a[i]!)));
  return m;
}
