/**
 * kNN distance to a memory bank (PatchCore's anomaly score): for each embedding, the mean Euclidean
 * distance to its k nearest bank entries. Computed as |q|² − 2q·b + |b|² with precomputed bank norms.
 * Single-threaded: callers go through knn-fast.ts, which moves the work to onnxruntime's threads
 * (knn-ort.ts, the same scores) once it pays for the session.
 */

/** A memory bank of `count` embeddings of size `dim`. */
export interface MemoryBank {
  dim: number;
  count: number;
  data: Float32Array;
}

/** Grid positions (col | row << 16) that keep a query from matching bank entries near it. */
export interface NearExclusion {
  /** Per bank entry. */
  bankPositions: Uint32Array;
  /** Per query. */
  positions: Uint32Array;
  /** Entries within this many cells (Chebyshev) of the query are skipped. */
  radius: number;
}

/** Packs a grid position for `NearExclusion` (col, row < 65536). */
export function packPosition(col: number, row: number): number {
  return ((row << 16) | col) >>> 0;
}

/**
 * Scores `count` embeddings against the bank. Four queries × four bank entries at a time: each
 * loaded value serves four products (float64 arithmetic, f32 storage).
 * @example const scores = knnScores(bank, embeddings, n, 1);
 */
export function knnScores(
  bank: MemoryBank,
  embeddings: Float32Array,
  count: number,
  k: number,
  /** Bank entry to skip for query i (the query itself, when the bank comes from the same slide); -1 for none. */
  selfIndex?: (i: number) => number,
  exclude?: NearExclusion,
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
  const best = new Float64Array(4 * kk);
  const qn = new Float64Array(4), skip = new Int32Array(4), qc = new Int32Array(4), qr = new Int32Array(4);
  const dots = new Float64Array(16);
  const radius = exclude ? exclude.radius : -1;
  const out = new Float64Array(count);
  const insert = (b: number, dist: number) => {
    const o = b * kk;
    if (!(dist < best[o + kk - 1]!)) return;
    let p = kk - 1;
    while (p > 0 && best[o + p - 1]! > dist) { best[o + p] = best[o + p - 1]!; p--; }
    best[o + p] = dist;
  };
  for (let i0 = 0; i0 < count; i0 += 4) {
    const rows = Math.min(4, count - i0);
    // a short last block repeats its last query; only the real rows are written
    const q0 = i0 * dim, q1 = Math.min(i0 + 1, count - 1) * dim, q2 = Math.min(i0 + 2, count - 1) * dim, q3 = Math.min(i0 + 3, count - 1) * dim;
    for (let b = 0; b < 4; b++) {
      const i = Math.min(i0 + b, count - 1), q = i * dim;
      let s = 0;
      for (let d = 0; d < dim; d++) s += embeddings[q + d]! * embeddings[q + d]!;
      qn[b] = s;
      skip[b] = selfIndex ? selfIndex(i) : -1;
      if (exclude) { const p = exclude.positions[i]!; qc[b] = p & 0xffff; qr[b] = p >>> 16; }
    }
    best.fill(Infinity);
    for (let j0 = 0; j0 < m; j0 += 4) {
      const b0 = j0 * dim, b1 = Math.min(j0 + 1, m - 1) * dim, b2 = Math.min(j0 + 2, m - 1) * dim, b3 = Math.min(j0 + 3, m - 1) * dim;
      let a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
      let a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
      for (let d = 0; d < dim; d++) {
        const x0 = embeddings[q0 + d]!, x1 = embeddings[q1 + d]!, x2 = embeddings[q2 + d]!, x3 = embeddings[q3 + d]!;
        const v0 = data[b0 + d]!, v1 = data[b1 + d]!, v2 = data[b2 + d]!, v3 = data[b3 + d]!;
        a00 += x0 * v0; a01 += x0 * v1; a02 += x0 * v2; a03 += x0 * v3;
        a10 += x1 * v0; a11 += x1 * v1; a12 += x1 * v2; a13 += x1 * v3;
        a20 += x2 * v0; a21 += x2 * v1; a22 += x2 * v2; a23 += x2 * v3;
        a30 += x3 * v0; a31 += x3 * v1; a32 += x3 * v2; a33 += x3 * v3;
      }
      dots[0] = a00; dots[1] = a01; dots[2] = a02; dots[3] = a03; dots[4] = a10; dots[5] = a11; dots[6] = a12; dots[7] = a13;
      dots[8] = a20; dots[9] = a21; dots[10] = a22; dots[11] = a23; dots[12] = a30; dots[13] = a31; dots[14] = a32; dots[15] = a33;
      const entries = Math.min(4, m - j0);
      for (let e = 0; e < entries; e++) {
        const j = j0 + e;
        let bc = 0, br = 0;
        if (exclude) { const p = exclude.bankPositions[j]!; bc = p & 0xffff; br = p >>> 16; }
        for (let b = 0; b < rows; b++) {
          if (j === skip[b]) continue;
          if (radius >= 0 && Math.abs(bc - qc[b]!) <= radius && Math.abs(br - qr[b]!) <= radius) continue;
          insert(b, qn[b]! - 2 * dots[b * 4 + e]! + norms[j]!);
        }
      }
    }
    for (let b = 0; b < rows; b++) {
      let sum = 0;
      for (let t = 0; t < kk; t++) sum += Math.sqrt(Math.max(0, best[b * kk + t]!));
      out[i0 + b] = sum / kk;
    }
  }
  return out;
}
