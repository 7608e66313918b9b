/**
 * Greedy coreset subsampling (k-center, as in PatchCore, Roth et al. 2022): repeatedly add the
 * embedding farthest from the chosen set. Distances are computed on a fixed-seed Gaussian random
 * projection to at most 128 dimensions (PatchCore's Johnson–Lindenstrauss speed-up).
 */
import { mulberry32 } from '../util/prng.ts';
import { gaussian } from './linalg.ts';

/**
 * Indices (ascending) of a coreset of `size` rows out of `count` embeddings of size `dim`.
 * @example const keep = greedyCoreset(embeddings, n, 384, 1000, 0);
 */
export function greedyCoreset(embeddings: Float32Array, count: number, dim: number, size: number, seed: number): number[] {
  if (size >= count) return Array.from({ length: count }, (_, i) => i);
  const projDim = Math.min(dim, 128);
  let projected: Float32Array;
  if (projDim === dim) {
    projected = embeddings.subarray(0, count * dim);
  } else {
    const normal = gaussian(mulberry32(seed ^ 0x5eed));
    const proj = new Float32Array(dim * projDim);
    for (let i = 0; i < proj.length; i++) proj[i] = normal() / Math.sqrt(projDim);
    projected = new Float32Array(count * projDim);
    for (let i = 0; i < count; i++) {
      for (let p = 0; p < projDim; p++) {
        let s = 0;
        for (let d = 0; d < dim; d++) s += embeddings[i * dim + d]! * proj[d * projDim + p]!;
        projected[i * projDim + p] = s;
      }
    }
  }
  const minDist = new Float64Array(count).fill(Infinity);
  const chosen: number[] = [];
  let current = seed % count;
  for (let c = 0; c < size; c++) {
    chosen.push(current);
    minDist[current] = -1;
    let far = -1;
    let farDist = -Infinity;
    const base = current * projDim;
    for (let i = 0; i < count; i++) {
      if (minDist[i]! < 0) continue;
      let s = 0;
      for (let p = 0, q = i * projDim; p < projDim; p++, q++) {
        const diff = projected[q]! - projected[base + p]!;
        s += diff * diff;
      }
      if (s < minDist[i]!) minDist[i] = s;
      if (minDist[i]! > farDist) { farDist = minDist[i]!; far = i; }
    }
    if (far < 0) break;
    current = far;
  }
  return chosen.sort((a, b) => a - b);
}
