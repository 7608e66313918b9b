import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitMahalanobis, mahalanobisScores } from '../../src/scoring/mahalanobis.ts';
import { knnScores } from '../../src/scoring/knn.ts';
import { greedyCoreset } from '../../src/scoring/coreset.ts';
import { calibrate, fitCalibration } from '../../src/scoring/calibration.ts';
import { gaussian } from '../../src/scoring/linalg.ts';
import { mulberry32 } from '../../src/util/prng.ts';

function gaussianRows(n: number, dim: number, seed: number, scale: number[] = []): Float32Array {
  const normal = gaussian(mulberry32(seed));
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) out[i * dim + d] = normal() * (scale[d] ?? 1);
  return out;
}

test('Mahalanobis: distances follow the covariance, outliers rank first, shrinkage in [0, 1]', () => {
  const dim = 8, n = 2000;
  const scale = [3, 1, 1, 1, 1, 1, 1, 0.5];
  const data = gaussianRows(n, dim, 1, scale);
  const model = fitMahalanobis(data, n, dim);
  assert.ok(model.shrinkage >= 0 && model.shrinkage <= 1);
  // A step of 3 σ along a wide axis and along a narrow axis are equally far.
  const probes = new Float32Array(2 * dim);
  probes[0] = 9; // 3 × σ=3
  probes[dim + 7] = 1.5; // 3 × σ=0.5
  const [a, b] = mahalanobisScores(model, probes, 2);
  // The robust refit trims 10% → a narrower fit: both ≈ 3/0.8; what matters is they agree.
  assert.ok(Math.abs(a! - b!) / a! < 0.1, `${a} vs ${b}`);
  const withOutlier = Float32Array.from(data);
  withOutlier.fill(0, 0, dim);
  withOutlier[7] = 4; // 8 σ along the narrow axis, within 1.5 σ of the wide one in Euclidean terms
  const scores = mahalanobisScores(fitMahalanobis(withOutlier, n, dim), withOutlier, n);
  assert.equal(scores.indexOf(Math.max(...scores)), 0);
});

test('Mahalanobis stays defined when tiles are fewer than dimensions', () => {
  const data = gaussianRows(20, 64, 2);
  const scores = mahalanobisScores(fitMahalanobis(data, 20, 64), data, 20);
  assert.ok(scores.every(Number.isFinite));
});

test('kNN distances equal brute force; a query never matches itself when excluded', () => {
  const dim = 5;
  const bank = gaussianRows(50, dim, 3);
  const queries = gaussianRows(10, dim, 4);
  const got = knnScores({ dim, count: 50, data: bank }, queries, 10, 3);
  for (let q = 0; q < 10; q++) {
    const d = Array.from({ length: 50 }, (_, j) => Math.hypot(...Array.from({ length: dim }, (_, c) => queries[q * dim + c]! - bank[j * dim + c]!))).sort((x, y) => x - y);
    assert.ok(Math.abs(got[q]! - (d[0]! + d[1]! + d[2]!) / 3) < 1e-5);
  }
  const self = knnScores({ dim, count: 50, data: bank }, bank, 50, 1, (i) => i);
  assert.ok(self.every((s) => s > 0));
  assert.ok(knnScores({ dim, count: 50, data: bank }, bank, 50, 1).every((s) => s < 1e-3));
});

test('greedy coreset picks one point per far-apart cluster first', () => {
  const dim = 3;
  const centres = [[0, 0, 0], [100, 0, 0], [0, 100, 0], [0, 0, 100]];
  const jitter = gaussian(mulberry32(5));
  const data = new Float32Array(400 * dim);
  for (let i = 0; i < 400; i++) for (let d = 0; d < dim; d++) data[i * dim + d] = centres[i % 4]![d]! + jitter();
  const keep = greedyCoreset(data, 400, dim, 4, 0);
  assert.deepEqual(new Set(keep.map((i) => i % 4)), new Set([0, 1, 2, 3]));
  assert.deepEqual(greedyCoreset(data, 400, dim, 4, 0), keep, 'deterministic');
  assert.equal(greedyCoreset(data, 3, dim, 10, 0).length, 3);
});

test('calibration: monotone, median → ~0.05, median + z·σ → 0.5', () => {
  const normal = gaussian(mulberry32(6));
  const scores = Array.from({ length: 5000 }, () => 10 + 2 * normal());
  const cal = fitCalibration(scores, 3);
  assert.ok(Math.abs(cal.center - 10) < 0.15 && Math.abs(cal.spread - 2) < 0.15, JSON.stringify(cal));
  assert.ok(Math.abs(calibrate(cal, cal.center) - 1 / (1 + Math.exp(3))) < 1e-12);
  assert.equal(calibrate(cal, cal.center + 3 * cal.spread), 0.5);
  let last = -1;
  for (let s = 0; s < 30; s += 0.5) { const c = calibrate(cal, s); assert.ok(c > last && c >= 0 && c <= 1); last = c; }
  assert.ok(fitCalibration([1, 1, 1, 1], 3).spread > 0, 'degenerate scores still give a spread');
});

test('Mahalanobis: the blocked whitening product equals per-row forward substitution (odd dim and count)', async () => {
  const { whitenedNormSquared } = await import('../../src/scoring/linalg.ts');
  for (const [dim, n] of [[7, 13], [33, 50]] as const) {
    const data = gaussianRows(n, dim, 11, Array.from({ length: dim }, (_, d) => 1 + d / 4));
    for (let i = 0; i < n * dim; i += 3) data[i] = data[i]! + 0.5 * data[(i + 1) % (n * dim)]!; // correlated columns
    const model = fitMahalanobis(data, n, dim);
    const got = mahalanobisScores(model, data, n);
    const centred = new Float64Array(dim), work = new Float64Array(dim);
    for (let i = 0; i < n; i++) {
      for (let d = 0; d < dim; d++) centred[d] = data[i * dim + d]! - model.mean[d]!;
      const want = Math.sqrt(whitenedNormSquared(model.chol, dim, centred, work));
      assert.ok(Math.abs(got[i]! - want) <= 1e-5 * want, `row ${i}: ${got[i]} vs ${want}`);
    }
  }
});

test('kNN near exclusion equals brute force over the entries farther than the radius', async () => {
  const { packPosition } = await import('../../src/scoring/knn.ts');
  const dim = 6, m = 40, n = 11, k = 2, radius = 1;
  const bank = gaussianRows(m, dim, 21), queries = gaussianRows(n, dim, 22);
  const bankPositions = Uint32Array.from({ length: m }, (_, j) => packPosition(j % 8, Math.floor(j / 8)));
  const positions = Uint32Array.from({ length: n }, (_, i) => packPosition((i * 3) % 8, i % 5));
  const got = knnScores({ dim, count: m, data: bank }, queries, n, k, undefined, { bankPositions, positions, radius });
  for (let q = 0; q < n; q++) {
    const far = Array.from({ length: m }, (_, j) => j).filter((j) => Math.max(Math.abs((j % 8) - (positions[q]! & 0xffff)), Math.abs(Math.floor(j / 8) - (positions[q]! >>> 16))) > radius);
    const d = far.map((j) => Math.hypot(...Array.from({ length: dim }, (_, c) => queries[q * dim + c]! - bank[j * dim + c]!))).sort((x, y) => x - y);
    assert.ok(Math.abs(got[q]! - (d[0]! + d[1]!) / 2) < 1e-5, `query ${q}: ${got[q]} vs ${(d[0]! + d[1]!) / 2}`);
  }
});
