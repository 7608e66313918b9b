import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tileMaxTokenScores } from '../../src/scoring/token-scores.ts';
import { knnScores } from '../../src/scoring/knn.ts';

const dim = 4;
const T = 8;
/** Tokens on a small ring around the origin (the "normal" texture). */
function normalToken(i: number): number[] {
  const a = (i / T) * 2 * Math.PI;
  return [Math.cos(a), Math.sin(a), 0, 0];
}

test('a tile scores as its worst token: one odd token is found where the pooled mean hides it', async () => {
  const bank = { dim, count: T, data: Float32Array.from(Array.from({ length: T }, (_, i) => normalToken(i)).flat()) };
  const normalTile = Array.from({ length: T }, (_, i) => normalToken(i));
  const oddTile = normalTile.map((v, i) => (i === 3 ? [v[0]!, v[1]!, 3, 0] : v));
  const tokens = Float32Array.from([...normalTile, ...oddTile].flat());
  const scores = await tileMaxTokenScores(bank, tokens, 2, T, 1);
  assert.ok(Math.abs(scores[0]!) < 1e-3, `normal tile ${scores[0]}`);
  assert.ok(Math.abs(scores[1]! - 3) < 1e-3, `odd tile ${scores[1]}`);
  // The pooled (mean) embeddings of the two tiles differ by only 3/T: the token score sees 8× more.
  const mean = (rows: number[][]) => rows[0]!.map((_, d) => rows.reduce((s, r) => s + r[d]!, 0) / rows.length);
  const pooled = knnScores({ dim, count: 1, data: Float32Array.from(mean(normalTile)) }, Float32Array.from(mean(oddTile)), 1, 1);
  assert.ok(Math.abs(pooled[0]! - 3 / T) < 1e-3);
});

test('skipping each token\'s own bank entry scores the bank\'s own tokens against the others', async () => {
  const bank = { dim, count: T, data: Float32Array.from(Array.from({ length: T }, (_, i) => normalToken(i)).flat()) };
  const scores = await tileMaxTokenScores(bank, bank.data, 1, T, 1, (i) => i);
  const neighbour = Math.hypot(1 - Math.cos((2 * Math.PI) / T), Math.sin((2 * Math.PI) / T));
  assert.ok(Math.abs(scores[0]! - neighbour) < 1e-3, `${scores[0]} vs ${neighbour}`);
});

test('token arrays of the wrong length are refused', async () => {
  const bank = { dim, count: 1, data: new Float32Array(dim) };
  await assert.rejects(tileMaxTokenScores(bank, new Float32Array(dim * T - 1), 1, T, 1), /expected 1 × 8 × 4/);
});
