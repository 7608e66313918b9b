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
