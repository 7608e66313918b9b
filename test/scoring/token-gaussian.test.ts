import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitTokenGaussian, fuseTwoScales, robustZ, tileTopTokenDistances } from '../../src/scoring/token-gaussian.ts';
import { gaussian } from '../../src/scoring/linalg.ts';
import { mulberry32 } from '../../src/util/prng.ts';

const dim = 6;
const perTile = 50;

/** `tiles` tiles of Gaussian tokens; `odd` maps a tile to how many of its tokens get shifted. */
function tokenTiles(tiles: number, seed: number, odd: Record<number, number> = {}, shift = 6): Float32Array {
  const normal = gaussian(mulberry32(seed));
  const out = new Float32Array(tiles * perTile * dim);
  for (let t = 0; t < tiles; t++) {
    for (let p = 0; p < perTile; p++) {
      for (let d = 0; d < dim; d++) out[(t * perTile + p) * dim + d] = normal() * (d === 0 ? 2 : 1);
      if (p < (odd[t] ?? 0)) out[(t * perTile + p) * dim + 1]! += shift;
    }
  }
  return out;
}

test('token statistic: a tile with a few far tokens ranks first, and the top-10% mean is at most the farthest token', () => {
  const tiles = 40;
  // Tile 7: 5 of 50 tokens (10%) shifted by 6 σ, its mean token by 0.6 σ only.
  const tokens = tokenTiles(tiles, 3, { 7: 5 });
  const model = fitTokenGaussian(tokens, tiles * perTile, dim);
  const stats = tileTopTokenDistances(model, tokens, tiles, perTile);
  const order = Array.from(stats.keys()).sort((a, b) => stats[b]! - stats[a]!);
  assert.equal(order[0], 7);
  const own = tileTopTokenDistances(model, tokens.subarray(7 * perTile * dim, 8 * perTile * dim), 1, perTile, 1 / perTile);
  assert.ok(own[0]! >= stats[7]!, 'the single farthest token is at least the top-10% mean');
});

test('token statistic: sizes are checked', () => {
  const tokens = tokenTiles(4, 1);
  const model = fitTokenGaussian(tokens, 4 * perTile, dim);
  assert.throws(() => tileTopTokenDistances(model, tokens, 5, perTile), /expected 5 × 50 × 6/);
  assert.throws(() => fitTokenGaussian(tokens, 1, dim), /at least 2 tokens/);
});

test('robustZ: median 0, MAD scale 1/1.4826, never divides by zero', () => {
  const z = robustZ([1, 2, 3, 4, 100]);
  assert.equal(z[2], 0);
  assert.ok(Math.abs(z[3]! - 1 / 1.4826) < 1e-9, `${z[3]}`);
  const flat = robustZ([5, 5, 5, 5]);
  assert.ok(flat.every((v) => v === 0));
});

test('fuseTwoScales: a tile outstanding at either scale, or too typical at the token scale, ranks above the rest', () => {
  const n = 60;
  const rng = mulberry32(9);
  const pooled = Array.from({ length: n }, () => 1 + 0.1 * rng());
  const tokens = Array.from({ length: n }, () => 1 + 0.1 * rng());
  pooled[3] = 3; // pooled outlier, ordinary tokens
  tokens[11] = 3; // token outlier, ordinary pooled score
  tokens[29] = -1; // tokens far below the slide's usual (two-sided)
  pooled[40] = -1; // an unusually LOW pooled distance is not anomalous
  const fused = fuseTwoScales(pooled, tokens);
  const rest = Array.from(fused).filter((_, i) => ![3, 11, 29].includes(i));
  for (const i of [3, 11, 29]) assert.ok(fused[i]! > Math.max(...rest), `tile ${i}: ${fused[i]} vs ${Math.max(...rest)}`);
  assert.throws(() => fuseTwoScales([1, 2], [1]), /2 pooled scores but 1/);
});
