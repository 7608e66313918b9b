/** CPU twin of the LayerNorm kernel (float64 sums), with the same `step` row selection. */
export function layerNormCpu(x: ArrayLike<number>, rows: number, D: number, gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number, step = 1): Float64Array {
  const y = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const s = r * step * D;
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x[s + i]!;
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[s + i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / D + eps);
    for (let i = 0; i < D; i++) y[r * D + i] = (x[s + i]! - mean) * inv * gamma[i]! + beta[i]!;
  }
  return y;
}
