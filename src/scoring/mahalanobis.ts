/**
 * In-slide anomaly score without a reference: robust Mahalanobis distance of each embedding to the
 * slide's own embedding distribution. Covariance is the Ledoit–Wolf shrinkage estimate
 * (Ledoit & Wolf 2004, the formula of scikit-learn's `ledoit_wolf_shrinkage`), so it stays well
 * conditioned when tiles are fewer than dimensions; robustness comes from one re-weighting step
 * that refits without the most distant 10% (anomalies should not shape "normal").
 */
import { cholesky, lowerTriangularInverse, WHITEN_BLOCK, whitenedSquaredNorms } from './linalg.ts';

/** A fitted Mahalanobis model. */
export interface MahalanobisModel {
  dim: number;
  mean: Float64Array;
  /** Cholesky factor of the shrunk covariance. */
  chol: Float64Array;
  shrinkage: number;
  samples: number;
}

/** Fraction of the most distant samples dropped before the refit. */
const TRIM = 0.1;

/**
 * Fits on `count` embeddings of size `dim` (row-major).
 * @example const model = fitMahalanobis(sample, n, 384); mahalanobisScores(model, batch, m)
 */
export function fitMahalanobis(samples: Float32Array, count: number, dim: number): MahalanobisModel {
  const first = fitOnce(samples, dim, allIndices(count));
  if (count < 8) return first;
  const distances = mahalanobisScores(first, samples, count);
  const order = allIndices(count).sort((a, b) => distances[a]! - distances[b]! || a - b);
  const kept = order.slice(0, Math.max(2, Math.ceil(count * (1 - TRIM)))).sort((a, b) => a - b);
  return fitOnce(samples, dim, kept);
}

/** Distances (not squared) of `count` embeddings. */
export function mahalanobisScores(model: MahalanobisModel, embeddings: Float32Array, count: number): Float64Array {
  const { whiten, padded } = whiteningOf(model);
  const out = new Float64Array(count);
  whitenedSquaredNorms(whiten, padded, model.dim, model.mean, embeddings, count, out);
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(out[i]!);
  return out;
}

/** A model's whitening matrix W = L⁻¹ (so the distance is |W (x − μ)|), f32, padded for the blocked product. */
export interface Whitening {
  whiten: Float32Array;
  /** Row length of `whiten`: dim rounded up to WHITEN_BLOCK. */
  padded: number;
}

const whitenings = new WeakMap<MahalanobisModel, Whitening>();

/**
 * The whitening of a model, computed once per model: scoring then is one triangular
 * matrix–matrix product over many rows (CPU here, kernels/whiten on the GPU) instead of a forward
 * substitution per row.
 */
export function whiteningOf(model: MahalanobisModel): Whitening {
  let w = whitenings.get(model);
  if (!w) {
    const { dim } = model;
    const inv = lowerTriangularInverse(model.chol, dim);
    const padded = Math.ceil(dim / WHITEN_BLOCK) * WHITEN_BLOCK;
    const whiten = new Float32Array(padded * padded);
    for (let i = 0; i < dim; i++) for (let k = 0; k <= i; k++) whiten[i * padded + k] = inv[i * dim + k]!;
    w = { whiten, padded };
    whitenings.set(model, w);
  }
  return w;
}

function allIndices(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}

function fitOnce(samples: Float32Array, dim: number, rows: number[]): MahalanobisModel {
  const n = rows.length;
  const mean = new Float64Array(dim);
  for (const r of rows) for (let d = 0; d < dim; d++) mean[d]! += samples[r * dim + d]!;
  for (let d = 0; d < dim; d++) mean[d]! /= n;
  // Empirical covariance S = XᵀX / n on centred rows (upper triangle, then mirrored).
  const cov = new Float64Array(dim * dim);
  // Four rows per sweep of the triangle: each update of S then carries four products.
  const x = new Float64Array(4 * dim);
  let sumNorm4 = 0;
  for (let r0 = 0; r0 < n; r0 += 4) {
    x.fill(0);
    for (let b = 0; b < 4 && r0 + b < n; b++) {
      const src = rows[r0 + b]! * dim;
      let norm2 = 0;
      for (let d = 0; d < dim; d++) {
        const v = samples[src + d]! - mean[d]!;
        x[b * dim + d] = v;
        norm2 += v * v;
      }
      sumNorm4 += norm2 * norm2;
    }
    const x1 = dim, x2 = 2 * dim, x3 = 3 * dim;
    for (let i = 0; i < dim; i++) {
      const y0 = x[i]!, y1 = x[x1 + i]!, y2 = x[x2 + i]!, y3 = x[x3 + i]!;
      const row = i * dim;
      for (let j = i; j < dim; j++) cov[row + j]! += y0 * x[j]! + y1 * x[x1 + j]! + y2 * x[x2 + j]! + y3 * x[x3 + j]!;
    }
  }
  let trace = 0;
  let frob2 = 0;
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      const v = cov[i * dim + j]! / n;
      cov[i * dim + j] = v;
      cov[j * dim + i] = v;
      frob2 += i === j ? v * v : 2 * v * v;
    }
    trace += cov[i * dim + i]!;
  }
  // Ledoit–Wolf: target μI with μ = tr(S)/p; shrinkage = min(β, δ)/δ.
  const mu = trace / dim;
  const delta = (frob2 - 2 * mu * trace + dim * mu * mu) / dim;
  const beta = Math.min(delta, (sumNorm4 / n - frob2) / (dim * n));
  let shrinkage = delta > 0 ? Math.max(0, beta / delta) : 1;
  // A floor keeps the factorisation stable for rank-deficient embeddings (constant dimensions).
  shrinkage = Math.min(1, Math.max(shrinkage, 1e-6));
  const floor = mu > 0 ? mu : 1e-12;
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < dim; j++) cov[i * dim + j] = (1 - shrinkage) * cov[i * dim + j]!;
    cov[i * dim + i]! += shrinkage * floor;
  }
  return { dim, mean, chol: cholesky(cov, dim), shrinkage, samples: n };
}
