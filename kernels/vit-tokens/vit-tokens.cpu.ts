/** CPU twin of the token assembly kernel. */
export function vitTokensCpu(patches: ArrayLike<number>, prefixTokens: ArrayLike<number>, pos: ArrayLike<number>, images: number, seq: number, prefix: number, D: number): Float64Array {
  const out = new Float64Array(images * seq * D);
  for (let b = 0; b < images; b++) for (let t = 0; t < seq; t++) for (let d = 0; d < D; d++) {
    const v = t < prefix ? prefixTokens[t * D + d]! : patches[(b * (seq - prefix) + t - prefix) * D + d]!;
    out[(b * seq + t) * D + d] = v + pos[t * D + d]!;
  }
  return out;
}
