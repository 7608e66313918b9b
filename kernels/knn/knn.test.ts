// GPU kNN against the CPU scorer (src/scoring/knn.ts, float64): awkward sizes (bank not a multiple
// of the 64-entry tile, queries not a multiple of 32, dim 7 and 100), k = 1, 3, 8, and the
// self-match skip. Scores agree to 1e-4 relative (f32 sums of squared differences), and every
// returned index is a true k-nearest: its CPU distance is within rounding of the k-th smallest.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { knnScores, packPosition } from '../../src/scoring/knn.ts';
import { GpuContext } from '../gpu/gpu-context.ts';
import { randomUniform } from '../dispatch/check.ts';
import { KnnSearch } from './knn.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

function dist2(a: Float32Array, i: number, b: Float32Array, j: number, d: number): number {
  let s = 0;
  for (let t = 0; t < d; t++) s += (a[i * d + t]! - b[j * d + t]!) ** 2;
  return s;
}

describe('knn kernel vs the CPU scorer', () => {
  let ctx: GpuContext;
  before(async () => { ctx = await GpuContext.create(); });
  after(async () => { await ctx?.destroy(); });
  for (const [n, m, d, k, self] of [[1, 1, 7, 1, false], [45, 1000, 100, 3, false], [70, 300, 16, 8, false], [33, 33, 12, 2, true]] as const) {
    it(`n=${n} bank=${m} dim=${d} k=${k}${self ? ' self-skip' : ''}`, async () => {
      const bank = { dim: d, count: m, data: randomUniform(m * d, m + d) };
      const queries = self ? bank.data.slice(0, n * d) : randomUniform(n * d, n + 1);
      const knn = await KnnSearch.create(ctx, bank);
      try {
        const got = await knn.search(queries, n, k, self ? { selfOffset: 0 } : {});
        const want = knnScores(bank, queries, n, k, self ? (i) => i : undefined);
        const kk = Math.max(1, Math.min(k, self ? m - 1 : m));
        for (let i = 0; i < n; i++) {
          assert.ok(Math.abs(got.scores[i]! - want[i]!) <= 1e-4 * Math.max(1, want[i]!), `query ${i}: ${got.scores[i]} vs ${want[i]}`);
          const all = Array.from({ length: m }, (_, j) => (self && j === i ? Infinity : dist2(queries, i, bank.data, j, d))).sort((a, b) => a - b);
          for (let t = 0; t < kk; t++) {
            const j = got.indices[i * kk + t]!;
            assert.ok(j < m && !(self && j === i), `query ${i}: index ${j}`);
            assert.ok(dist2(queries, i, bank.data, j, d) <= all[kk - 1]! * (1 + 1e-5) + 1e-6);
          }
        }
      } finally {
        knn.destroy();
      }
    });
  }
  it('near exclusion: no entry within the radius of a query matches; scores equal the CPU scorer', async () => {
    const n = 70, m = 300, d = 24, k = 3, radius = 2;
    const bank = { dim: d, count: m, data: randomUniform(m * d, 9), positions: Uint32Array.from({ length: m }, (_, j) => packPosition(j % 20, Math.floor(j / 20))) };
    const queries = randomUniform(n * d, 10);
    const positions = Uint32Array.from({ length: n }, (_, i) => packPosition((i * 7) % 20, (i * 3) % 15));
    const knn = await KnnSearch.create(ctx, bank);
    try {
      const got = await knn.search(queries, n, k, { exclude: { positions, radius } });
      const want = knnScores(bank, queries, n, k, undefined, { bankPositions: bank.positions, positions, radius });
      for (let i = 0; i < n; i++) {
        assert.ok(Math.abs(got.scores[i]! - want[i]!) <= 1e-4 * Math.max(1, want[i]!), `query ${i}: ${got.scores[i]} vs ${want[i]}`);
        const qc = positions[i]! & 0xffff, qr = positions[i]! >>> 16;
        for (let t = 0; t < k; t++) {
          const j = got.indices[i * k + t]!;
          assert.ok(Math.max(Math.abs((j % 20) - qc), Math.abs(Math.floor(j / 20) - qr)) > radius, `query ${i} matched entry ${j} within ${radius} cells`);
        }
      }
    } finally {
      knn.destroy();
    }
  });
});

