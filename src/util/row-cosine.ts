/**
 * The agreement figure that encoder benchmarks print when they check one engine against another.
 */

/**
 * Worst (smallest) cosine similarity between corresponding rows of two row-major matrices.
 * @param a First matrix, `a.length / d` rows of `d` values.
 * @param b Second matrix, the same shape as `a`.
 * @param d Row length (the embedding size).
 * @returns The minimum over rows of cos(a_r, b_r); 1 when there are no rows, NaN if a row is all zeros.
 */
export function worstRowCosine(a: Float32Array, b: Float32Array, d: number): number {
  let worst = 1;
  for (let r = 0; r < a.length / d; r++) {
    let dot = 0, na = 0, nb = 0;
    for (let i = r * d; i < (r + 1) * d; i++) { dot += a[i]! * b[i]!; na += a[i]! ** 2; nb += b[i]! ** 2; }
    worst = Math.min(worst, dot / Math.sqrt(na * nb));
  }
  return worst;
}
