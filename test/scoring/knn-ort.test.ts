// The CPU kNN on onnxruntime (knn-ort.ts) against the JS loop (`knnScores`): the same scores to
// 1e-7 relative (candidates from the f32 block, distances re-ranked in f64) on random data and on real patch tokens (lamina-vit-tiny-dino on EBHI-Seg tiles), with
// the near exclusion and the self skip honoured exactly, blocks of queries included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { knnScores, packPosition, type MemoryBank } from '../../src/scoring/knn.ts';
import { createOrtKnn, createOrtKnnScorer } from '../../src/scoring/knn-ort.ts';
import { knnScoresFast, releaseKnnSession } from '../../src/scoring/knn-fast.ts';
import { maxRel, rows } from './knn-test-data.ts';
import { openEmbedder } from '../../src/pipeline/open-embedder.ts';



test('ORT kNN equals the JS loop on random data: plain, self skip, near exclusion, k 1..8', async () => {
  const dim = 48, m = 700, n = 333;
  // offset 4: norms far above the distances, the case the centring on the bank mean is for
  const bank: MemoryBank = { dim, count: m, data: rows(m, dim, 1, 4) };
  const queries = rows(n, dim, 2, 4);
  const bankPositions = Uint32Array.from({ length: m }, (_, j) => packPosition(j % 30, Math.floor(j / 30)));
  const positions = Uint32Array.from({ length: n }, (_, i) => packPosition((i * 7) % 30, i % 24));
  const knn = await createOrtKnn(bank);
  try {
    for (const k of [1, 3, 8]) {
      assert.ok(maxRel(knnScores(bank, queries, n, k), await knn.score(queries, n, k)) < 1e-7, `k ${k} plain`);
      // radius 4: few skipped entries, candidates from the graph's TopK; 12: most of the grid, the whole block scanned
      for (const radius of [4, 12]) {
        const exclude = { bankPositions, positions, radius };
        assert.ok(maxRel(knnScores(bank, queries, n, k, undefined, exclude), await knn.score(queries, n, k, undefined, exclude)) < 1e-7, `k ${k} radius ${radius}`);
      }
      const self = (i: number) => (i * 2) % m;
      assert.ok(maxRel(knnScores(bank, queries, n, k, self), await knn.score(queries, n, k, self)) < 1e-7, `k ${k} self`);
    }
    // the bank scored against itself with the self skip: each entry's own zero distance is never taken
    assert.ok(maxRel(knnScores(bank, bank.data, m, 2, (i) => i), await knn.score(bank.data, m, 2, (i) => i)) < 1e-7);
  } finally {
    await knn.close();
  }
});

test('ORT kNN near exclusion is exact: a near duplicate inside the radius is skipped, one outside is found', async () => {
  const dim = 16, m = 64;
  const data = rows(m, dim, 3);
  const q = data.slice(5 * dim, 6 * dim);
  q[0] = q[0]! + 1e-3;
  const bankPositions = Uint32Array.from({ length: m }, (_, j) => packPosition(j * 10, 0));
  const knn = await createOrtKnn({ dim, count: m, data });
  try {
    // entry 5 sits at column 50: a query at 50 + 10 with radius 10 must skip it, radius 9 must not
    const inside = await knn.score(q, 1, 1, undefined, { bankPositions, positions: Uint32Array.of(packPosition(60, 0)), radius: 10 });
    const outside = await knn.score(q, 1, 1, undefined, { bankPositions, positions: Uint32Array.of(packPosition(60, 0)), radius: 9 });
    assert.ok(inside[0]! > 0.5, `inside the radius: ${inside[0]}`);
    assert.ok(outside[0]! < 0.01, `outside the radius: ${outside[0]}`);
    // every entry excluded: no neighbour, as knnScores (Infinity; region-finish.ts rescoring without it)
    const all = await knn.score(q, 1, 1, undefined, { bankPositions, positions: Uint32Array.of(packPosition(300, 0)), radius: 1000 });
    assert.equal(all[0], Infinity);
  } finally {
    await knn.close();
  }
});

test('ORT kNN splits large calls into blocks with the same scores; the scorer wrapper and knnScoresFast agree', async () => {
  // 2,100 entries × 4,000 queries is 33.6 MB of distances: three 16 MiB blocks
  const dim = 8, m = 2100, n = 4000;
  const bank: MemoryBank = { dim, count: m, data: rows(m, dim, 4) };
  const queries = rows(n, dim, 5);
  const bankPositions = Uint32Array.from({ length: m }, (_, j) => packPosition(j % 50, Math.floor(j / 50)));
  const positions = Uint32Array.from({ length: n }, (_, i) => packPosition(i % 50, Math.floor(i / 100)));
  const want = knnScores(bank, queries, n, 3, undefined, { bankPositions, positions, radius: 2 });
  const scorer = await createOrtKnnScorer(bank, { bankPositions });
  try {
    assert.equal(scorer.device, 'cpu');
    assert.ok(maxRel(want, await scorer.score(queries, n, 3, { positions, radius: 2 })) < 1e-7);
  } finally {
    await scorer.close();
  }
  assert.ok(maxRel(want, await knnScoresFast(bank, queries, n, 3, undefined, { bankPositions, positions, radius: 2 })) < 1e-7);
  // without a kept session a tiny call stays on the JS loop: identical, not just close
  await releaseKnnSession();
  assert.deepEqual(await knnScoresFast(bank, queries, 3, 2), knnScores(bank, queries, 3, 2));
});

test('ORT kNN equals the JS loop on real patch tokens (tiny DINO ViT, EBHI-Seg tiles as one region grid)', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lamina-knn-ort-'));
  process.env.LAMINA_MODEL_DIR = join(dir, 'models');
  const embedder = await openEmbedder('lamina-vit-tiny-dino', 'cpu', 2);
  try {
    const manifest = (await readFile(new URL('../../../shared/histology/MANIFEST.tsv', import.meta.url), 'utf8')).trim().split('\n').slice(1);
    const files = manifest.filter((l) => l.startsWith('ebhi-seg\t')).slice(0, 8).map((l) => l.split('\t')[1]!);
    const tiles = await Promise.all(files.map(async (f) => {
      const { data, info } = await sharp(new URL(`../../../shared/histology/ebhi-seg/${f}`, import.meta.url).pathname).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      return { width: info.width, height: info.height, data };
    }));
    assert.ok(embedder.embedRegions, 'the CPU engine embeds regions');
    const { tokens, grid } = await embedder.embedRegions!(tiles);
    const n = tiles.length * grid * grid, dim = tokens.length / n;
    // tiles side by side: token t of tile i at column i·grid + t mod grid
    const positions = Uint32Array.from({ length: n }, (_, c) => {
      const i = Math.floor(c / (grid * grid)), t = c % (grid * grid);
      return packPosition(i * grid + (t % grid), Math.floor(t / grid));
    });
    const sample = Array.from({ length: Math.floor(n / 3) }, (_, j) => j * 3);
    const bank: MemoryBank = { dim, count: sample.length, data: new Float32Array(sample.length * dim) };
    sample.forEach((c, j) => bank.data.set(tokens.subarray(c * dim, (c + 1) * dim), j * dim));
    const exclude = { bankPositions: Uint32Array.from(sample, (c) => positions[c]!), positions, radius: 4 };
    const knn = await createOrtKnn(bank);
    try {
      const rel = maxRel(knnScores(bank, tokens, n, 3, undefined, exclude), await knn.score(tokens, n, 3, undefined, exclude));
      assert.ok(rel < 1e-7, `max relative difference ${rel}`);
    } finally {
      await knn.close();
    }
  } finally {
    await embedder.close();
    await rm(dir, { recursive: true, force: true });
  }
});
