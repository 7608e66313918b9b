// The in-slide token scorer's wiring, without a model: which batches compute token statistics,
// how finish joins them with the pooled score, and the refusals (bank, regions, mixed batches).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { InvalidParameterError, UnprocessableError } from '../../src/errors.ts';
import { tokenStatsInBatch, type BatchOutput } from '../../src/pipeline/batch.ts';
import type { TileEmbedder } from '../../src/pipeline/embedder.ts';
import { scoreSlide } from '../../src/pipeline/slide-scorer.ts';
import { fuseTwoScales } from '../../src/scoring/token-gaussian.ts';
import { fitMahalanobis, mahalanobisScores } from '../../src/scoring/mahalanobis.ts';
import { gaussian } from '../../src/scoring/linalg.ts';
import { mulberry32 } from '../../src/util/prng.ts';

const model = { name: 'fake', trained: true, embeddingSize: 4, inputSize: 224, mpp: null };
const plain: TileEmbedder = { model, device: 'cpu', embed: async () => new Float32Array(0), close: async () => {} };
const withTokens: TileEmbedder = { ...plain, embedTokens: async () => ({ embeddings: new Float32Array(0), tokens: new Float32Array(0), tokensPerTile: 0 }) };

test('parameters: mahalanobis-tokens is in-slide and tile-only', () => {
  assert.equal(parseAnalysisParams({ scorer: 'mahalanobis-tokens' }).scorer, 'mahalanobis-tokens');
  assert.throws(() => parseAnalysisParams({ scorer: 'mahalanobis-tokens', reference: 'bank.lmb' }), (e: Error) => e instanceof InvalidParameterError && /no reference bank/.test(e.message));
  assert.throws(() => parseAnalysisParams({ scorer: 'mahalanobis-tokens', regionSize: 1024 }), /no regionSize/);
  assert.throws(() => parseAnalysisParams({ scorer: 'tokens' }), /one of 'auto', 'knn', 'mahalanobis', 'mahalanobis-tokens'/);
});

test('batches compute token statistics for auto with a tokens encoder, never with a bank', () => {
  const auto = parseAnalysisParams({});
  assert.equal(tokenStatsInBatch(auto, null, withTokens), true);
  assert.equal(tokenStatsInBatch(auto, null, plain), false, 'auto falls back to pooled Mahalanobis');
  assert.equal(tokenStatsInBatch(parseAnalysisParams({ scorer: 'mahalanobis' }), null, withTokens), false);
  assert.equal(tokenStatsInBatch(parseAnalysisParams({ scorer: 'knn' }), null, withTokens), false);
  assert.throws(() => tokenStatsInBatch(parseAnalysisParams({ scorer: 'mahalanobis-tokens' }), null, plain), (e: Error) => e instanceof UnprocessableError && /gives no patch tokens/.test(e.message));
});

/** Batches of 8 tiles with 4-d embeddings; `stats` gives each batch's token statistics or none. */
function batches(total: number, stats: (start: number, count: number) => Float64Array | null): () => AsyncIterable<BatchOutput> {
  const normal = gaussian(mulberry32(4));
  const embeddings = Float32Array.from({ length: total * 4 }, () => normal());
  return async function* () {
    for (let start = 0; start < total; start += 8) {
      const count = Math.min(8, total - start);
      yield { start, count, dim: 4, embeddings: embeddings.slice(start * 4, (start + count) * 4), rawScores: stats(start, count) };
    }
  };
}

test('finish: token statistics from the batches are joined with the pooled score (max of robust z, tokens two-sided)', async () => {
  const total = 40;
  const tokenStat = Float64Array.from({ length: total }, (_, i) => 1 + 0.01 * ((i * 7) % 11));
  tokenStat[13] = 5;
  const source = batches(total, (s, c) => tokenStat.slice(s, s + c));
  const { raw, summary } = await scoreSlide(total, source, null, parseAnalysisParams({}), new AbortController().signal);
  assert.equal(summary.method, 'mahalanobis-tokens');
  // The same pooled fit the scorer makes (all tiles sampled), then the fusion.
  const emb = new Float32Array(total * 4);
  for await (const b of source()) emb.set(b.embeddings, b.start * 4);
  const pooled = mahalanobisScores(fitMahalanobis(emb, total, 4), emb, total);
  assert.deepEqual(Array.from(raw), Array.from(fuseTwoScales(pooled, tokenStat)));
  assert.equal(raw.indexOf(Math.max(...raw)), 13);
  assert.ok(summary.calibration.spread > 0);
});

test('finish: batches without statistics → pooled Mahalanobis; mixed batches or a forced scorer without them → refused', async () => {
  const signal = new AbortController().signal;
  const none = await scoreSlide(24, batches(24, () => null), null, parseAnalysisParams({}), signal);
  assert.equal(none.summary.method, 'mahalanobis');
  await assert.rejects(scoreSlide(24, batches(24, (s, c) => (s === 8 ? null : new Float64Array(c))), null, parseAnalysisParams({}), signal), /2 of 3 batch outputs carry token statistics/);
  await assert.rejects(scoreSlide(24, batches(24, () => null), null, parseAnalysisParams({ scorer: 'mahalanobis-tokens' }), signal), /needs token statistics/);
});
