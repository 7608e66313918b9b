/**
 * CPU twin of the GEMM kernel, in float64: y = acc + bias (→ GELU) (→ out + gamma·y) with
 * acc = X[M, K] · W[K, N], the same conventions as matmul.ts. `out` is read (residual) and written.
 */
import { gelu } from '../../src/encoder/vit-reference.ts';

export interface MatmulCpuArgs {
  M: number; N: number; K: number;
  x: ArrayLike<number>; w: ArrayLike<number>; bias: ArrayLike<number>;
  gamma?: ArrayLike<number>;
  gelu?: boolean; residual?: boolean;
}

/** Returns the new output (a copy of `out` updated when residual, else fresh). */
export function matmulCpu(a: MatmulCpuArgs, out?: ArrayLike<number>): Float64Array {
  const { M, N, K, x, w, bias } = a;
  const y = new Float64Array(M * N);
  const row = new Float64Array(N);
  for (let m = 0; m < M; m++) {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const xv = x[m * K + k]!;
      if (xv === 0) continue;
      for (let n = 0; n < N; n++) row[n]! += xv * w[k * N + n]!;
    }
    for (let n = 0; n < N; n++) {
      let v = row[n]! + bias[n]!;
      if (a.gelu) v = gelu(v);
      if (a.residual) v = out![m * N + n]! + (a.gamma ? a.gamma[n]! : 1) * v;
      y[m * N + n] = v;
    }
  }
  return y;
}

/** ‖got − ref‖ / ‖ref‖; Infinity when `got` holds a NaN. */
export function relativeError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i]!;
    if (Number.isNaN(g)) return Infinity;
    num += (g - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}
