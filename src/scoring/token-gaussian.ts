/**
 * In-slide scoring of patch tokens (no reference bank): a robust Gaussian of the slide's own patch
 * tokens (the Ledoit–Wolf, trimmed `fitMahalanobis`), fitted on the tokens of an evenly spread
 * sample of tiles, and each tile summarised by the mean Mahalanobis distance of its most distant
 * tokens. A Gaussian rather than kNN because the slide is its own reference and may be heavily
 * contaminated: a kNN against the slide's tokens finds an anomaly's tokens among its own kind,
 * while one Gaussian over tens of thousands of tokens is barely moved by them.
 *
 * The token statistic alone misses what changes a tile as a whole (a pooled-embedding shift), and
 * on the synthetic benchmark real tissue makes tiles whose tokens are unusually CLOSE to the
 * slide's token centre (AUROC 0.01–0.16 one-sided). `fuseTwoScales` therefore joins the pooled
 * Mahalanobis score and the two-sided token statistic on a common robust-z scale
 * (docs/benchmarks.md, issue 3/9 section).
 */
import { sortedQuantile } from './linalg.ts';
import { fitMahalanobis, mahalanobisScores, type MahalanobisModel } from './mahalanobis.ts';

/** Fraction of a tile's tokens (the most distant ones) whose mean distance is its token statistic. */
export const TOP_TOKEN_FRACTION = 0.1;

/**
 * Fits the token Gaussian on `count` tokens of size `dim` (row-major).
 * @example const model = fitTokenGaussian(sampleTokens, 64 * 196, 192);
 */
export function fitTokenGaussian(tokens: Float32Array, count: number, dim: number): MahalanobisModel {
  if (count < 2 || tokens.length < count * dim) throw new Error(`token fit needs at least 2 tokens of ${dim} values (got ${count}, ${tokens.length} floats)`);
  return fitMahalanobis(tokens, count, dim);
}

/**
 * Per tile: the mean Mahalanobis distance of its ⌈fraction · tokensPerTile⌉ most distant tokens
 * (`tokens` tile-major, `tiles × tokensPerTile × dim`).
 * @example tileTopTokenDistances(model, tokens, 32, 196) // Float64Array(32)
 */
export function tileTopTokenDistances(
  model: MahalanobisModel,
  tokens: Float32Array,
  tiles: number,
  tokensPerTile: number,
  fraction = TOP_TOKEN_FRACTION,
): Float64Array {
  if (tokens.length !== tiles * tokensPerTile * model.dim) {
    throw new Error(`tokens have ${tokens.length} floats, expected ${tiles} × ${tokensPerTile} × ${model.dim}`);
  }
  return topTokenMeans(mahalanobisScores(model, tokens, tiles * tokensPerTile), tiles, tokensPerTile, fraction);
}

/**
 * The per-tile reduction of `tileTopTokenDistances`, for distances computed elsewhere (the GPU):
 * per tile, the mean of its ⌈fraction · tokensPerTile⌉ largest values of `perToken` (tile-major).
 * @example topTokenMeans(distances, 32, 196) // Float64Array(32)
 */
export function topTokenMeans(perToken: Float64Array, tiles: number, tokensPerTile: number, fraction = TOP_TOKEN_FRACTION): Float64Array {
  if (perToken.length !== tiles * tokensPerTile) throw new Error(`${perToken.length} token distances, expected ${tiles} × ${tokensPerTile}`);
  const top = Math.max(1, Math.min(tokensPerTile, Math.ceil(fraction * tokensPerTile)));
  const out = new Float64Array(tiles);
  for (let t = 0; t < tiles; t++) {
    const sorted = perToken.slice(t * tokensPerTile, (t + 1) * tokensPerTile).sort();
    let sum = 0;
    for (let i = tokensPerTile - top; i < tokensPerTile; i++) sum += sorted[i]!;
    out[t] = sum / top;
  }
  return out;
}

/** Robust z-scores: (x − median) / (1.4826 · MAD), the MAD never 0. */
export function robustZ(values: ArrayLike<number>): Float64Array {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return new Float64Array(0);
  const median = sortedQuantile(sorted, 0.5);
  const dev = sorted.map((v) => Math.abs(v - median)).sort();
  let spread = 1.4826 * sortedQuantile(dev, 0.5);
  if (!(spread > 0)) spread = Math.max(Math.abs(median) * 1e-6, 1e-12);
  return Float64Array.from(values, (v) => (v - median) / spread);
}

/**
 * One score per tile from the pooled Mahalanobis distance and the token statistic of the same
 * tiles: max(z_pooled, |z_tokens|) on robust z-scores. A tile is as anomalous as its most unusual
 * scale; the token statistic counts in both directions (too-typical tokens too).
 * @example fuseTwoScales(pooled, tokenStats)[i] // robust z units
 */
export function fuseTwoScales(pooled: ArrayLike<number>, tokenStats: ArrayLike<number>): Float64Array {
  if (pooled.length !== tokenStats.length) throw new Error(`${pooled.length} pooled scores but ${tokenStats.length} token statistics`);
  const zp = robustZ(pooled);
  const zt = robustZ(tokenStats);
  return zp.map((v, i) => Math.max(v, Math.abs(zt[i]!)));
}
