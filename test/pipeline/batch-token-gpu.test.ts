// The in-slide token statistic of WebGPU batches scored on the GPU (token-score-gpu.ts, lavapipe
// here): per-token distances and per-tile statistics equal the CPU path's to 1e-4 relative on
// realistic token sizes (196 tokens × 192 dims, a fit on 64 tiles), an analysis with the WebGPU
// engine gives the same tile scores and ranking both ways, one GpuContext serves a process's
// models and goes when they are dropped, and a GPU that cannot be opened falls back to the CPU
// with one warning.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { GpuContext } from '../../kernels/gpu/gpu-context.ts';
import { parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { analyzeSlide } from '../../src/pipeline/analyze.ts';
import type { TileEmbedder } from '../../src/pipeline/embedder.ts';
import { openEmbedder } from '../../src/pipeline/open-embedder.ts';
import { dropSlideTokenModels, slideTokenModel } from '../../src/pipeline/slide-token-model.ts';
import { planAnalysis } from '../../src/pipeline/plan.ts';
import { openSlide } from '../../src/readers/registry.ts';
import { gpuTokenDistances, gpuTokenScorerState, releaseGpuTokenScorer, releaseGpuTokenScorers, tokenScoreOnGpu } from '../../src/pipeline/token-score-gpu.ts';
import { quietContext } from '../../src/pipeline/stage.ts';
import { mahalanobisScores } from '../../src/scoring/mahalanobis.ts';
import { fitTokenGaussian, tileTopTokenDistances, topTokenMeans } from '../../src/scoring/token-gaussian.ts';
import { gaussian } from '../../src/scoring/linalg.ts';
import { mulberry32 } from '../../src/util/prng.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
// lavapipe is a software adapter, where the GPU path runs only when forced: forced for these tests
process.env.LAMINA_TOKEN_SCORE_GPU = '1';
const SAMPLE = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/slides/CMU-1-Small-Region.svs');
const perTile = 196, dim = 192;

/** Contexts opened through `GpuContext.create` by this process (the encoder's included). */
const realCreate = GpuContext.create.bind(GpuContext);
let created = 0;
let failCreate = false;
GpuContext.create = async (options) => {
  if (failCreate) throw new Error('no adapter (test)');
  created++;
  return realCreate(options);
};

const dirs: string[] = [];
after(async () => {
  GpuContext.create = realCreate;
  await releaseGpuTokenScorers();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/**
 * ViT-like tokens: a low-rank shared structure plus per-dimension noise of varied scale, an offset
 * mean, and a few tiles with a cluster of outlying tokens (the statistic's top 10 %).
 */
function tokensLike(tiles: number, seed: number): Float32Array {
  const normal = gaussian(mulberry32(seed));
  const basis = gaussian(mulberry32(7)); // the same factors for every call
  const rank = 12;
  const load = Float32Array.from({ length: rank * dim }, () => basis());
  const out = new Float32Array(tiles * perTile * dim);
  const f = new Float32Array(rank);
  for (let r = 0; r < tiles * perTile; r++) {
    for (let k = 0; k < rank; k++) f[k] = normal() * (3 - k / 6);
    const outlier = (Math.floor(r / perTile) % 9 === 4) && r % perTile < 30 ? 4 : 0;
    for (let d = 0; d < dim; d++) {
      let v = 0.5 + (d % 7) * 0.3 + normal() * (0.2 + (d % 5) * 0.15) + outlier * (d % 3 === 0 ? 1 : 0);
      for (let k = 0; k < rank; k++) v += f[k]! * load[k * dim + d]! * 0.3;
      out[r * dim + d] = v;
    }
  }
  return out;
}

const relClose = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) => {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol * Math.abs(b[i]!), `${what} ${i}: ${a[i]} vs ${b[i]}`);
};

// First: the per-process warning is still unspent.
test('no GPU: null (the batch then scores on the CPU), one warning for many calls, no context kept', async () => {
  const model = fitTokenGaussian(tokensLike(4, 1), 4 * perTile, dim);
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (m: string) => { warnings.push(m); };
  failCreate = true;
  try {
    assert.equal(await gpuTokenDistances(model, tokensLike(2, 2), 2 * perTile), null);
    assert.equal(await gpuTokenDistances(model, tokensLike(2, 3), 2 * perTile), null);
    await releaseGpuTokenScorer(model);
    const other = fitTokenGaussian(tokensLike(4, 4), 4 * perTile, dim);
    assert.equal(await gpuTokenDistances(other, tokensLike(2, 2), 2 * perTile), null);
    await releaseGpuTokenScorers();
  } finally {
    failCreate = false;
    console.warn = warn;
  }
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /GPU token scoring unavailable \(no adapter \(test\)\); scoring tokens on CPU worker threads/);
  assert.deepEqual(gpuTokenScorerState(), { models: 0, contextOpen: false });
});

test('GPU distances and per-tile statistics equal the CPU path (196 × 192 tokens, 1e-4 relative)', async () => {
  const model = fitTokenGaussian(tokensLike(64, 11), 64 * perTile, dim);
  const tiles = 48;
  const tokens = tokensLike(tiles, 12);
  const before = created;
  const distances = await gpuTokenDistances(model, tokens, tiles * perTile);
  assert.ok(distances, 'lavapipe gives a GPU scorer');
  // Not squared on either side: the statistic means the same thing.
  relClose(distances, mahalanobisScores(model, tokens, tiles * perTile), 1e-4, 'token');
  const want = tileTopTokenDistances(model, tokens, tiles, perTile);
  relClose(topTokenMeans(distances, tiles, perTile), want, 1e-4, 'tile');
  // The WebGPU engine's tokens live in a SharedArrayBuffer, uploaded as they are.
  const shared = new Float32Array(new SharedArrayBuffer(tokens.byteLength));
  shared.set(tokens);
  assert.deepEqual(await gpuTokenDistances(model, shared, tiles * perTile), distances);
  // The outlying tiles are the top ones either way.
  const order = (v: ArrayLike<number>) => Array.from(v, (x, i) => [x, i] as const).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
  assert.deepEqual(order(topTokenMeans(distances, tiles, perTile)).slice(0, 5), order(want).slice(0, 5));
  assert.deepEqual(order(want).slice(0, 5).sort((a, b) => a - b), [4, 13, 22, 31, 40]);
  // A second model shares the context; releasing both closes it.
  const other = fitTokenGaussian(tokensLike(8, 13), 8 * perTile, dim);
  relClose((await gpuTokenDistances(other, tokens, perTile))!, mahalanobisScores(other, tokens, perTile), 1e-4, 'other model');
  assert.equal(created - before, 1, 'one context for both models');
  assert.deepEqual(gpuTokenScorerState(), { models: 2, contextOpen: true });
  await releaseGpuTokenScorer(model);
  assert.deepEqual(gpuTokenScorerState(), { models: 1, contextOpen: true });
  await releaseGpuTokenScorer(other);
  assert.deepEqual(gpuTokenScorerState(), { models: 0, contextOpen: false });
});

test('a release while a batch scores waits for it', async () => {
  const model = fitTokenGaussian(tokensLike(4, 21), 4 * perTile, dim);
  const tokens = tokensLike(8, 22);
  const pending = gpuTokenDistances(model, tokens, 8 * perTile);
  const released = releaseGpuTokenScorer(model);
  const order: string[] = [];
  void pending.then(() => order.push('batch'));
  void released.then(() => order.push('released'));
  relClose((await pending)!, mahalanobisScores(model, tokens, 8 * perTile), 1e-4, 'token');
  await released;
  assert.deepEqual(order, ['batch', 'released']);
  assert.deepEqual(gpuTokenScorerState(), { models: 0, contextOpen: false });
});

/** tiles.csv rows as objects. */
async function tileRows(dir: string): Promise<Record<string, string>[]> {
  const [head, ...rows] = (await readFile(join(dir, 'tiles.csv'), 'utf8')).trim().split('\n');
  const cols = head!.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i]!, v])));
}

test('analysis with the WebGPU engine: GPU token scoring gives the CPU path\'s tile scores and ranking; one context, dropped with the models', async () => {
  const real = await openEmbedder('untrained-test-tiny', 'webgpu');
  try {
    assert.equal(real.device, 'webgpu');
    // The same tokens for both runs: each call's output is replayed by its tiles' pixels.
    const seen = new Map<string, ReturnType<NonNullable<TileEmbedder['embedTokens']>>>();
    const key = (tiles: { data: Uint8Array }[]) => tiles.reduce((h, t) => h.update(t.data), createHash('sha1')).digest('hex');
    const embedder: TileEmbedder = {
      ...real,
      embedTokens(tiles, signal) {
        const k = key(tiles);
        if (!seen.has(k)) seen.set(k, real.embedTokens!(tiles, signal));
        return seen.get(k)!;
      },
      close: async () => {},
    };
    const params = parseAnalysisParams({ model: 'untrained-test-tiny', engine: 'webgpu', batchSize: 16 });
    const dir = await mkdtemp(join(tmpdir(), 'lamina-token-gpu-'));
    dirs.push(dir);
    const saved = process.env.LAMINA_TOKEN_SCORE_GPU;
    try {
      process.env.LAMINA_TOKEN_SCORE_GPU = '0';
      const cpu = await analyzeSlide(SAMPLE, params, quietContext(), { outDir: join(dir, 'cpu'), embedder });
      assert.equal(gpuTokenScorerState().contextOpen, false, 'LAMINA_TOKEN_SCORE_GPU=0 keeps to the CPU');
      await dropSlideTokenModels(); // the GPU run fits its own model again (same tokens, same model)
      process.env.LAMINA_TOKEN_SCORE_GPU = '1';
      const before = created;
      const gpu = await analyzeSlide(SAMPLE, params, quietContext(), { outDir: join(dir, 'gpu'), embedder });
      assert.equal(created - before, 1, 'one context for the token scorer');
      assert.deepEqual(gpuTokenScorerState(), { models: 1, contextOpen: true });
      assert.equal(gpu.scorer.method, 'mahalanobis-tokens');
      assert.equal(gpu.tiles.analysed, cpu.tiles.analysed);
      const a = await tileRows(join(dir, 'cpu')), b = await tileRows(join(dir, 'gpu'));
      assert.ok(a.length > 20 && 'score' in a[0]!, Object.keys(a[0] ?? {}).join(','));
      relClose(b.map((r) => Number(r.score)), a.map((r) => Number(r.score)), 1e-3, 'tile score');
      // raw: the fused robust z (near 0 for typical tiles, hence an absolute floor)
      a.forEach((r, i) => assert.ok(Math.abs(Number(b[i]!.raw_score) - Number(r.raw_score)) <= 1e-3 * Math.max(1, Math.abs(Number(r.raw_score))), `raw ${i}: ${b[i]!.raw_score} vs ${r.raw_score}`));
      const rank = (rows: Record<string, string>[]) => rows.map((r, i) => [Number(r.score), i] as const).sort((x, y) => y[0] - x[0]).map(([, i]) => i);
      assert.deepEqual(rank(b).slice(0, 10), rank(a).slice(0, 10));
      // A second analysis of the slide reuses the cached model and its scorer: no new context.
      await analyzeSlide(SAMPLE, params, quietContext(), { outDir: join(dir, 'gpu2'), embedder });
      assert.equal(created - before, 1);
      await dropSlideTokenModels();
      assert.deepEqual(gpuTokenScorerState(), { models: 0, contextOpen: false });
    } finally {
      if (saved === undefined) delete process.env.LAMINA_TOKEN_SCORE_GPU; else process.env.LAMINA_TOKEN_SCORE_GPU = saved;
    }
  } finally {
    await real.close();
  }
});

test('a model that leaves the slide-token-model cache takes its GPU scorer with it', async () => {
  await dropSlideTokenModels();
  const slide = await openSlide(SAMPLE);
  try {
    const { plan } = await planAnalysis({ slide }, parseAnalysisParams({}), quietContext());
    // Five encoders (the cache key has the model name) of 8-d tokens from the tiles' pixels.
    const fake = (name: string, seed: number): TileEmbedder => ({
      model: { name, trained: false, embeddingSize: 8, inputSize: 64, mpp: null },
      device: 'webgpu',
      embed: async () => { throw new Error('unused'); },
      async embedTokens(tiles) {
        const normal = gaussian(mulberry32(seed + tiles[0]!.data[0]!));
        const tokens = Float32Array.from({ length: tiles.length * 4 * 8 }, (_, i) => normal() + tiles[Math.floor(i / 32)]!.data[i % 97]! / 64);
        return { embeddings: new Float32Array(tiles.length * 8), tokens, tokensPerTile: 4 };
      },
      close: async () => {},
    });
    const models = [];
    for (let i = 0; i < 5; i++) {
      const model = await slideTokenModel(slide, plan, fake(`fake-${i}`, i));
      models.push(model);
      assert.ok(await gpuTokenDistances(model, new Float32Array(3 * 8).fill(1), 3));
    }
    await new Promise((r) => setTimeout(r, 50)); // the release follows the evicted model's promise
    assert.deepEqual(gpuTokenScorerState(), { models: 4, contextOpen: true }, 'the cache keeps 4 models');
    assert.equal(await slideTokenModel(slide, plan, fake('fake-4', 4)), models[4], 'still cached');
    await dropSlideTokenModels();
    assert.deepEqual(gpuTokenScorerState(), { models: 0, contextOpen: false });
  } finally {
    await slide.close();
  }
});


test('on by default, off with LAMINA_TOKEN_SCORE_GPU=0; on a software adapter only when forced with =1', async () => {
  const model = fitTokenGaussian(tokensLike(4, 31), 4 * perTile, dim);
  const tokens = tokensLike(2, 32);
  try {
    delete process.env.LAMINA_TOKEN_SCORE_GPU;
    assert.equal(tokenScoreOnGpu(), true);
    // lavapipe: not forced, so the batch stays on the worker threads and no context is kept
    assert.equal(await gpuTokenDistances(model, tokens, 2 * perTile), null);
    await releaseGpuTokenScorer(model);
    assert.deepEqual(gpuTokenScorerState(), { models: 0, contextOpen: false });
    process.env.LAMINA_TOKEN_SCORE_GPU = '0';
    assert.equal(tokenScoreOnGpu(), false);
    process.env.LAMINA_TOKEN_SCORE_GPU = '1';
    assert.equal(tokenScoreOnGpu(), true);
    relClose((await gpuTokenDistances(model, tokens, 2 * perTile))!, mahalanobisScores(model, tokens, 2 * perTile), 1e-4, 'forced');
    await releaseGpuTokenScorer(model);
  } finally {
    process.env.LAMINA_TOKEN_SCORE_GPU = '1';
  }
});
