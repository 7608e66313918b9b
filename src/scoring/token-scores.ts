/**
 * PatchCore on patch tokens: a tile's score is the largest kNN distance of any of its patch tokens
 * to a bank of (coreset-subsampled) normal tokens. A small anomaly inside a tile moves a few
 * tokens far from the bank while barely moving the tile's pooled embedding, so the worst token
 * sees what the pooled score averages away (docs/benchmarks.md, issue 3/9 section).
 */
import type { MemoryBank } from './knn.ts';
import { knnScoresFast } from './knn-fast.ts';

/**
 * Per-tile max over its `tokensPerTile` tokens (tile-major, `tiles × tokensPerTile × dim`) of the
 * mean distance to the k nearest bank tokens.
 * @param selfIndex bank entry to skip for token i (when the bank was built from these tokens).
 * @example const scores = await tileMaxTokenScores(bank, tokens, 32, 196, 1);
 */
export async function tileMaxTokenScores(
  bank: MemoryBank,
  tokens: Float32Array,
  tiles: number,
  tokensPerTile: number,
  k: number,
  selfIndex?: (i: number) => number,
): Promise<Float64Array> {
  if (tokens.length !== tiles * tokensPerTile * bank.dim) {
    throw new Error(`tokens have ${tokens.length} floats, expected ${tiles} × ${tokensPerTile} × ${bank.dim}`);
  }
  const perToken = await knnScoresFast(bank, tokens, tiles * tokensPerTile, k, selfIndex);
  const out = new Float64Array(tiles);
  for (let t = 0; t < tiles; t++) {
    let best = -Infinity;
    for (let p = t * tokensPerTile, end = p + tokensPerTile; p < end; p++) if (perToken[p]! > best) best = perToken[p]!;
    out[t] = best;
  }
  return out;
}
