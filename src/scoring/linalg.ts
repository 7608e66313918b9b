/**
 * Small dense linear algebra for the scorers (D×D, D ≤ a few thousand), in float64.
 * Matrices are row-major Float64Arrays.
 */
import { UnprocessableError } from '../errors.ts';

/** Lower-triangular Cholesky factor L of a symmetric positive-definite matrix (A = L Lᵀ). */
export function cholesky(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i * n + j]!;
      const ri = i * n;
      const rj = j * n;
      for (let k = 0; k < j; k++) sum -= l[ri + k]! * l[rj + k]!;
      if (i === j) {
        if (!(sum > 0)) throw new UnprocessableError(`covariance is not positive definite (pivot ${i}: ${sum})`);
        l[ri + i] = Math.sqrt(sum);
      } else {
        l[ri + j] = sum / l[rj + j]!;
      }
    }
  }
  return l;
}

/** Squared norm of L⁻¹ v (forward substitution); `work` is scratch of length n. */
export function whitenedNormSquared(l: Float64Array, n: number, v: Float64Array, work: Float64Array): number {
  let total = 0;
  for (let i = 0; i < n; i++) {
    let sum = v[i]!;
    const ri = i * n;
    for (let k = 0; k < i; k++) sum -= l[ri + k]! * work[k]!;
    const y = sum / l[ri + i]!;
    work[i] = y;
    total += y * y;
  }
  return total;
}

/** Inverse of a lower-triangular n×n matrix (row-major), itself lower-triangular: column by column forward substitution. */
export function lowerTriangularInverse(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    inv[j * n + j] = 1 / l[j * n + j]!;
    for (let i = j + 1; i < n; i++) {
      let sum = 0;
      const ri = i * n;
      for (let k = j; k < i; k++) sum -= l[ri + k]! * inv[k * n + j]!;
      inv[ri + j] = sum / l[ri + i]!;
    }
  }
  return inv;
}

/** Rows of `whitenedSquaredNorms`'s factor padded to a multiple of this many (its register block). */
export const WHITEN_BLOCK = 4;

/**
 * Squared norms |W (xᵢ − μ)|² of `count` rows of `x` (row-major, `n` values each) for a
 * lower-triangular W given padded (`np` = n rounded up to WHITEN_BLOCK, zeros above the diagonal
 * and in the padding), written to `out`. Four rows × four outputs at a time: each loaded value
 * serves four products, where a per-row forward substitution loads two values per product.
 * Arithmetic is float64 (JS numbers); only storage is f32.
 */
export function whitenedSquaredNorms(w: Float32Array, np: number, n: number, mean: Float64Array, x: Float32Array, count: number, out: Float64Array): void {
  const B = WHITEN_BLOCK;
  const xc = new Float64Array(B * np);
  for (let c0 = 0; c0 < count; c0 += B) {
    const rows = Math.min(B, count - c0);
    xc.fill(0);
    for (let r = 0; r < rows; r++) {
      const src = (c0 + r) * n, dst = r * np;
      for (let d = 0; d < n; d++) xc[dst + d] = x[src + d]! - mean[d]!;
    }
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = 0; i < np; i += B) {
      let a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
      let a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
      const w0 = i * np, w1 = w0 + np, w2 = w1 + np, w3 = w2 + np;
      // W is lower-triangular: rows i..i+3 end at column i+3
      for (let k = 0, end = i + B; k < end; k++) {
        const x0 = xc[k]!, x1 = xc[np + k]!, x2 = xc[2 * np + k]!, x3 = xc[3 * np + k]!;
        const v0 = w[w0 + k]!, v1 = w[w1 + k]!, v2 = w[w2 + k]!, v3 = w[w3 + k]!;
        a00 += v0 * x0; a01 += v1 * x0; a02 += v2 * x0; a03 += v3 * x0;
        a10 += v0 * x1; a11 += v1 * x1; a12 += v2 * x1; a13 += v3 * x1;
        a20 += v0 * x2; a21 += v1 * x2; a22 += v2 * x2; a23 += v3 * x2;
        a30 += v0 * x3; a31 += v1 * x3; a32 += v2 * x3; a33 += v3 * x3;
      }
      s0 += a00 * a00 + a01 * a01 + a02 * a02 + a03 * a03;
      s1 += a10 * a10 + a11 * a11 + a12 * a12 + a13 * a13;
      s2 += a20 * a20 + a21 * a21 + a22 * a22 + a23 * a23;
      s3 += a30 * a30 + a31 * a31 + a32 * a32 + a33 * a33;
    }
    out[c0] = s0;
    if (rows > 1) out[c0 + 1] = s1;
    if (rows > 2) out[c0 + 2] = s2;
    if (rows > 3) out[c0 + 3] = s3;
  }
}

/** Standard normal samples from a uniform PRNG (Box–Muller). */
export function gaussian(random: () => number): () => number {
  return () => {
    const u = Math.max(random(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
  };
}

/** Quantile (linear interpolation) of already sorted values. */
export function sortedQuantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
