// The whitening kernel against the CPU Mahalanobis scorer (src/scoring/mahalanobis.ts, blocked
// float64 arithmetic; and per-row forward substitution, the plain reference): awkward sizes
// (dim 7, 100 and 192 — not multiples of the 64-wide tiles; rows not a multiple of 64), a model
// fitted on correlated rows. Distances agree to 1e-4 relative (f32 sums over ≤ 192 terms).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fitMahalanobis, mahalanobisScores, whiteningOf } from '../../src/scoring/mahalanobis.ts';
import { whitenedNormSquared } from '../../src/scoring/linalg.ts';
import { GpuContext } from '../gpu/gpu-context.ts';
import { randomUniform } from '../dispatch/check.ts';
import { WhitenedNorms } from './whiten.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

/** Rows with correlated columns and an offset mean (so centring matters). */
function rows(n: number, d: number, seed: number): Float32Array {
  const u = randomUniform(n * d, seed);
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) out[i * d + c] = 5 + u[i * d + c]! + 0.7 * u[i * d + ((c + 1) % d)]! * (1 + c / d);
  return out;
}

describe('whiten kernel vs the CPU Mahalanobis scorer', () => {
  let ctx: GpuContext;
  before(async () => { ctx = await GpuContext.create(); });
  after(async () => { await ctx?.destroy(); });
  for (const [n, d] of [[1, 7], [130, 100], [300, 192]] as const) {
    it(`n=${n} dim=${d}`, async () => {
      const fit = rows(Math.max(n, 40), d, d);
      const model = fitMahalanobis(fit, Math.max(n, 40), d);
      const queries = rows(n, d, n + 1);
      const norms = await WhitenedNorms.create(ctx, { dim: d, ...whiteningOf(model), mean: model.mean });
      try {
        const got = await norms.distances(queries, n);
        const want = mahalanobisScores(model, queries, n);
        const centred = new Float64Array(d), work = new Float64Array(d);
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < d; c++) centred[c] = queries[i * d + c]! - model.mean[c]!;
          const plain = Math.sqrt(whitenedNormSquared(model.chol, d, centred, work));
          assert.ok(Math.abs(want[i]! - plain) <= 1e-5 * plain, `cpu row ${i}: ${want[i]} vs ${plain}`);
          assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-4 * want[i]!, `gpu row ${i}: ${got[i]} vs ${want[i]}`);
        }
      } finally {
        norms.destroy();
      }
    });
  }
});
