/**
 * The in-slide token model (`scorer` 'mahalanobis-tokens', the default without a reference bank):
 * a robust Gaussian of the patch tokens of `TOKEN_FIT_TILES` evenly spread tiles of the plan,
 * which every batch scores its own tokens against. Batches need it before the slide's other tiles
 * are seen, so whoever needs it first reads and embeds those tiles again; the sample depends only
 * on the plan, so every batch — in one process or in any queue worker — gets the same model and
 * the result does not depend on who ran which batch. A small per-process cache keeps it for the
 * batches that follow. Cost: `TOKEN_FIT_TILES` extra tile embeddings per process and analysis,
 * and ~0.3 MB (mean + Cholesky factor) per cached model; the fit holds 64 × 196 tokens at most.
 * With the WebGPU engine a cached model may also have a device copy (token-score-gpu.ts), freed
 * when the model leaves this cache.
 */
import type { Slide } from '../readers/types.ts';
import { UnprocessableError } from '../errors.ts';
import type { TilePlan } from '../tiling/tile-plan.ts';
import { readTiles } from '../tiling/tile-reader.ts';
import { fitTokenGaussian } from '../scoring/token-gaussian.ts';
import type { MahalanobisModel } from '../scoring/mahalanobis.ts';
import type { TileEmbedder } from './embedder.ts';
import { fitSampleIndices } from './slide-scorer.ts';
import { releaseGpuTokenScorer, releaseGpuTokenScorers } from './token-score-gpu.ts';

/** Tiles whose tokens fit the model (all of a smaller plan). 64 × 196 ≈ 12,500 tokens for ViT/16 at 224 px. */
export const TOKEN_FIT_TILES = 64;
/** Tiles embedded per encoder call while fitting. */
const FIT_CHUNK = 16;
/** Models kept per process (one per analysis running in it). */
const CACHE_SIZE = 4;
const cache = new Map<string, Promise<MahalanobisModel>>();

/**
 * The token model of this slide and plan, fitted once per process.
 * @throws UnprocessableError when the encoder gives no patch tokens.
 */
export function slideTokenModel(slide: Slide, plan: TilePlan, embedder: TileEmbedder, signal?: AbortSignal): Promise<MahalanobisModel> {
  const sample = fitSampleIndices(plan.tiles.length, TOKEN_FIT_TILES).map((i) => plan.tiles[i]!);
  // What the sample's pixels and tokens depend on: model, slide, level, tile geometry and places.
  const key = [embedder.model.name, slide.name, plan.slide.width, plan.slide.height, plan.levelIndex, plan.tileSizePx, plan.tileSizeLevel0, ...sample.map((t) => `${t.x},${t.y},${t.width},${t.height}`)].join('|');
  let model = cache.get(key);
  if (!model) {
    model = fit(slide, plan, sample, embedder, signal);
    cache.set(key, model);
    // A failed or cancelled fit is not kept; the next batch tries again.
    model.catch(() => { if (cache.get(key) === model) cache.delete(key); });
    while (cache.size > CACHE_SIZE) drop(cache.keys().next().value!);
  }
  return model;
}

/** Forgets every cached model and frees their GPU scorers (token-score-gpu.ts). */
export async function dropSlideTokenModels(): Promise<void> {
  for (const key of [...cache.keys()]) drop(key);
  await releaseGpuTokenScorers();
}

/** A model that leaves the cache takes its GPU scorer, if any, with it. */
function drop(key: string): void {
  const model = cache.get(key);
  cache.delete(key);
  model?.then(releaseGpuTokenScorer, () => undefined);
}

async function fit(slide: Slide, plan: TilePlan, sample: TilePlan['tiles'], embedder: TileEmbedder, signal?: AbortSignal): Promise<MahalanobisModel> {
  if (!embedder.embedTokens) throw new UnprocessableError(`encoder '${embedder.model.name}' gives no patch tokens, which the in-slide token scorer needs (use scorer 'mahalanobis')`);
  const dim = embedder.model.embeddingSize;
  let tokens: Float32Array | null = null;
  let perTile = 0;
  for (let start = 0; start < sample.length; start += FIT_CHUNK) {
    const images = await readTiles(slide, plan, sample.slice(start, start + FIT_CHUNK), signal);
    const out = await embedder.embedTokens(images, signal);
    if (!tokens) {
      perTile = out.tokensPerTile;
      tokens = new Float32Array(sample.length * perTile * dim);
    }
    tokens.set(out.tokens, start * perTile * dim);
  }
  return fitTokenGaussian(tokens!, sample.length * perTile, dim);
}
