/**
 * kNN distance to a memory bank (PatchCore's anomaly score): for each embedding, the mean Euclidean
 * distance to its k nearest bank entries. Computed as |q|² − 2q·b + |b|² with precomputed bank norms.
 */

/** A memory bank of `count` embeddings of size `dim`. */
export interface MemoryBank {
  dim: number;
  count: number;
  data: Float32Array;
}

/**
 * Scores `count` embeddings against the bank.
 * @example const scores = knnScores(bank, embeddings, n, 1);
 */
export function knnScores(
  bank: MemoryBank,
  embeddings: Float32Array,
  count: number,
  k: number,
  /** Bank entry to skip for query i (the query itself, when the bank comes from the same slide); -1 for none. */
  selfIndex?: (i: number) => number,
): Float64Array {
  const { dim, data } = bank;
  const m = bank.count;
  const kk = Math.max(1, Math.min(k, selfIndex ? m - 1 : m));
  const norms = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    let s = 0;
    for (let d = 0, b = j * dim; d < dim; d++, b++) s += data[b]! * data[b]!;
    norms[j] = s;
  }
  const best = new Float64Array(kk);
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const q = i * dim;
    let qn = 0;
    for (let d = 0; d < dim; d++) qn += embeddings[q + d]! * embeddings[q + d]!;
    best.fill(Infinity);
    const skip = selfIndex ? selfIndex(i) : -1;
    for (let j = 0; j < m; j++) {
      if (j === skip) continue;
      let dot = 0;
      for (let d = 0, b = j * dim; d < dim; d++, b++) dot += embeddings[q + d]! * data[b]!;
      const dist = qn - 2 * dot + norms[j]!;
      if (dist < best[kk - 1]!) {
        // Insertion into the sorted k-best list.
        let p = kk - 1;
        while (p > 0 && best[p - 1]! > dist) { best[p] = best[p - 1]!; p--; }
        best[p] = dist;
      }
    }
    let sum = 0;
    for (let t = 0; t < kk; t++) sum += Math.sqrt(Math.max(0, best[t]!));
    out[i] = sum / kk;
  }
  return out;
}
