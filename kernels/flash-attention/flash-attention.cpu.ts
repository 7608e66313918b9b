/**
 * The CPU twin of flash-attention.wgsl, written plainly in f64 for clarity: the reference the
 * tests and `lamina bench attention --check` compare the GPU against. Tensors are dense
 * (batch, seq, heads, headDim) arrays of numbers (f16 inputs are expanded first).
 */
import type { AttentionShape } from './flash-attention.ts';

export interface CpuAttentionInputs {
  q: ArrayLike<number>; k: ArrayLike<number>; v: ArrayLike<number>;
  /** One entry per (batch, key); non-zero keeps the key. */
  mask?: ArrayLike<number>;
}

/**
 * softmax(scale · q·kᵀ) · v for the query rows listed (all rows by default), as a Float64Array of
 * rows.length × heads × headDim per batch, in (batch, row, head, d) order. Rows whose keys are all
 * masked are zeros.
 */
export function attentionCpu(shape: AttentionShape, x: CpuAttentionInputs, options: { scale?: number; rows?: number[] } = {}): Float64Array {
  const { batch, heads, seqQ, seqK, headDim: d } = shape;
  const scale = options.scale ?? 1 / Math.sqrt(d);
  const rows = options.rows ?? Array.from({ length: seqQ }, (_, i) => i);
  const out = new Float64Array(batch * rows.length * heads * d);
  const s = new Float64Array(seqK);
  for (let b = 0; b < batch; b++) {
    for (let ri = 0; ri < rows.length; ri++) {
      const row = rows[ri]!;
      for (let h = 0; h < heads; h++) {
        const qBase = ((b * seqQ + row) * heads + h) * d;
        let max = -Infinity;
        for (let j = 0; j < seqK; j++) {
          if (x.mask && !x.mask[b * seqK + j]) { s[j] = -Infinity; continue; }
          const kBase = ((b * seqK + j) * heads + h) * d;
          let dot = 0;
          for (let i = 0; i < d; i++) dot += x.q[qBase + i]! * x.k[kBase + i]!;
          s[j] = dot * scale;
          if (s[j]! > max) max = s[j]!;
        }
        const oBase = ((b * rows.length + ri) * heads + h) * d;
        if (max === -Infinity) continue; // every key masked: zeros
        let sum = 0;
        for (let j = 0; j < seqK; j++) {
          const p = s[j] === -Infinity ? 0 : Math.exp(s[j]! - max);
          if (p === 0) continue;
          sum += p;
          const vBase = ((b * seqK + j) * heads + h) * d;
          for (let i = 0; i < d; i++) out[oBase + i] += p * x.v[vBase + i]!;
        }
        for (let i = 0; i < d; i++) out[oBase + i] /= sum;
      }
    }
  }
  return out;
}

/**
 * ‖got − ref‖ / ‖ref‖ over all elements; NaN or ±Inf anywhere in `got` gives Infinity, so a
 * comparison against a tolerance never passes on them.
 */
export function relativeError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (got.length !== ref.length) throw new Error(`relativeError: ${got.length} values against ${ref.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const g = got[i]!;
    if (!Number.isFinite(g)) return Infinity;
    num += (g - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}
