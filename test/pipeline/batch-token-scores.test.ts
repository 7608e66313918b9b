// The batch's in-slide token statistic on worker threads equals the inline computation exactly:
// tokens in shared memory (the WebGPU engine's output) and in ordinary memory, uneven splits, and
// small batches that stay inline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenDistancesParallel } from '../../src/pipeline/token-score-pool.ts';
import { fitTokenGaussian, tileTopTokenDistances } from '../../src/scoring/token-gaussian.ts';
import { gaussian } from '../../src/scoring/linalg.ts';
import { mulberry32 } from '../../src/util/prng.ts';

const dim = 24, perTile = 49;

function randomTokens(tiles: number, shared: boolean, seed: number): Float32Array {
  const normal = gaussian(mulberry32(seed));
  const t = new Float32Array(shared ? new SharedArrayBuffer(tiles * perTile * dim * 4) : new ArrayBuffer(tiles * perTile * dim * 4));
  for (let i = 0; i < t.length; i++) t[i] = normal() * (1 + (i % dim) / dim);
  return t;
}

test('worker-thread token statistics equal tileTopTokenDistances, shared or copied tokens', async () => {
  const model = fitTokenGaussian(randomTokens(16, false, 1), 16 * perTile, dim);
  for (const [tiles, shared, threads] of [[53, true, 3], [53, false, 4], [40, true, 5], [7, true, 4]] as const) {
    const tokens = randomTokens(tiles, shared, tiles + 10);
    // A view at an offset, as a batch's share of a bigger buffer would be.
    const view = shared ? tokens : tokens.subarray(0);
    const got = await tokenDistancesParallel(model, view, tiles, perTile, threads);
    const want = tileTopTokenDistances(model, view, tiles, perTile);
    assert.deepEqual(Array.from(got), Array.from(want), `${tiles} tiles, shared ${shared}, ${threads} threads`);
  }
});

test('more models than a worker keeps, used again in turn, still score exactly', async () => {
  const models = Array.from({ length: 6 }, (_, i) => fitTokenGaussian(randomTokens(4, false, 20 + i), 4 * perTile, dim));
  const tokens = randomTokens(24, true, 99);
  for (const i of [0, 1, 2, 3, 4, 5, 0, 3, 5, 1]) {
    const got = await tokenDistancesParallel(models[i]!, tokens, 24, perTile, 3);
    assert.deepEqual(Array.from(got), Array.from(tileTopTokenDistances(models[i]!, tokens, 24, perTile)), `model ${i}`);
  }
});
