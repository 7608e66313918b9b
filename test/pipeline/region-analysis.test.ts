// Region mode (issue 7, regionSize) end to end on the CPU (onnxruntime, the any-size graph): a
// synthetic slide with planted anomalies is analysed twice with the trained default model and the
// same token reference bank (from an anomaly-free synthetic slide) — as 512-px native regions
// scored per 16-px token, and as 224-px tiles scored per tile. The region heatmap has one value per
// cell; measured against the true mask on the same cells, the per-token scores must localise
// better (higher patch AUROC and more anomalies found) than the tile grid does.
// Also: the region plan covers each tissue cell exactly once (edge regions moved inward), and the
// errors for a region size that is not a multiple of the patch size, a non-level-0 resolution and
// a bank of pooled tile embeddings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { paramsFromFlags } from '../../src/cli/analysis-flags.ts';
import { InvalidParameterError } from '../../src/errors.ts';
import { localisation, readCellScores } from '../../src/heatmap/localisation.ts';
import { REGIONS_CSV_HEADER } from '../../src/heatmap/tiles-csv.ts';
import { analyzeSlide } from '../../src/pipeline/analyze.ts';
import type { TileEmbedder } from '../../src/pipeline/embedder.ts';
import { fitReference } from '../../src/pipeline/fit-reference.ts';
import { openEmbedder } from '../../src/pipeline/open-embedder.ts';
import { planAnalysis } from '../../src/pipeline/plan.ts';
import type { RegionAnalysisResult } from '../../src/pipeline/region-finish.ts';
import { quietContext } from '../../src/pipeline/stage.ts';
import { openSlide } from '../../src/readers/registry.ts';
import { readTruth, synthesizeSlide } from '../../src/synth/index.ts';
import { forEachOwnedCell } from '../../src/tiling/region-plan.ts';
import { tissueFractionLookup } from '../../src/tissue/tissue-mask.ts';
import { computeTissueMask } from '../../src/tissue/tissue-mask.ts';

const MODEL = 'lamina-vit-tiny-dino';
let dir: string;
let embedder: TileEmbedder;
let slidePath: string, sidecarPath: string, bank: string, normalPath: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lamina-region-'));
  process.env.LAMINA_MODEL_DIR = join(dir, 'models');
  const normal = await synthesizeSlide({ width: 1024, height: 1024, out: join(dir, 'normal.tiff'), anomalies: 0, seed: 105 });
  const s = await synthesizeSlide({ width: 1536, height: 1280, out: join(dir, 'test.tiff'), anomalies: 4, seed: 5, minAnomalySize: 48, maxAnomalySize: 200 });
  slidePath = s.path;
  normalPath = normal.path;
  sidecarPath = s.sidecarPath;
  embedder = await openEmbedder(MODEL, 'cpu', 2);
  bank = join(dir, 'bank.lmb');
  await fitReference([normal.path], parseAnalysisParams({ model: MODEL, bankEntries: 'tokens' }), quietContext(), embedder, bank);
});
after(async () => {
  await embedder?.close();
  await rm(dir, { recursive: true, force: true });
});

test('native 512-px regions: a heatmap cell per 16-px token, localising better than 224-px tiles', { timeout: 300_000 }, async () => {
  const regionsOut = join(dir, 'regions'), tilesOut = join(dir, 'tiles');
  const r = await analyzeSlide(slidePath, parseAnalysisParams({ model: MODEL, regionSize: 512, reference: bank }), quietContext(), { outDir: regionsOut, embedder }) as RegionAnalysisResult;
  await analyzeSlide(slidePath, parseAnalysisParams({ model: MODEL, reference: bank }), quietContext(), { outDir: tilesOut, embedder });

  assert.equal(r.mode, 'regions');
  assert.deepEqual(r.grid, { cols: 96, rows: 80, cellSizeLevel0: 16, file: 'scores.f32', dtype: 'float32-le', noData: 'NaN' });
  assert.equal(r.encoding.tokensPerRegion, 1024);
  assert.equal(r.scorer.method, 'knn-bank');
  const png = await sharp(join(regionsOut, 'heatmap.png')).metadata();
  assert.deepEqual([png.width, png.height], [96, 80], 'heatmap.png: one pixel per 16-px cell');
  const f32 = await readFile(join(regionsOut, 'scores.f32'));
  assert.equal(f32.length, 96 * 80 * 4);
  let finite = 0;
  for (let i = 0; i < 96 * 80; i++) if (Number.isFinite(f32.readFloatLE(i * 4))) finite++;
  assert.equal(finite, r.encoding.cells, 'every scored cell, and only those, has a value');
  const csv = (await readFile(join(regionsOut, 'tiles.csv'), 'utf8')).trim().split('\n');
  assert.equal(csv[0], REGIONS_CSV_HEADER);
  assert.equal(csv.length - 1, r.encoding.regions, 'tiles.csv: a row per encoded region');
  const cellsInCsv = csv.slice(1).reduce((n, line) => n + Number(line.split(',')[10]), 0);
  assert.equal(cellsInCsv, r.encoding.cells);

  const { sidecar, mask } = await readTruth(sidecarPath);
  const truth = { mask, anomalies: sidecar.anomalies };
  const fineRegions = await readCellScores(regionsOut, 16), fineTiles = await readCellScores(tilesOut, 16);
  const byRegion = localisation(fineRegions, 16, truth, fineTiles);
  const byTile = localisation(fineTiles, 16, truth, fineRegions);
  assert.ok(byRegion.anomalousCells > 20, `the compared cells include anomalies (${byRegion.anomalousCells})`);
  assert.ok(byRegion.auroc > byTile.auroc, `patch AUROC: regions ${byRegion.auroc.toFixed(3)} vs tiles ${byTile.auroc.toFixed(3)}`);
  assert.ok(byRegion.found > byTile.found, `anomalies found: regions ${byRegion.found} vs tiles ${byTile.found}`);
});

test('in-slide region scores: kNN to the slide\'s own cells beyond 256 px (the default) ranks cells better than one Gaussian', { timeout: 300_000 }, async () => {
  const knnOut = join(dir, 'in-slide-knn'), mahaOut = join(dir, 'in-slide-maha');
  const knn = await analyzeSlide(slidePath, parseAnalysisParams({ model: MODEL, regionSize: 512 }), quietContext(), { outDir: knnOut, embedder }) as RegionAnalysisResult;
  const maha = await analyzeSlide(slidePath, parseAnalysisParams({ model: MODEL, regionSize: 512, scorer: 'mahalanobis' }), quietContext(), { outDir: mahaOut, embedder }) as RegionAnalysisResult;
  assert.equal(knn.scorer.method, 'knn-self');
  assert.equal(knn.scorer.fitSamples, knn.encoding.cells, 'every cell is in the sample on a slide this small');
  assert.equal(maha.scorer.method, 'mahalanobis');
  const { sidecar, mask } = await readTruth(sidecarPath);
  const truth = { mask, anomalies: sidecar.anomalies };
  const byKnn = localisation(await readCellScores(knnOut, 16), 16, truth), byMaha = localisation(await readCellScores(mahaOut, 16), 16, truth);
  assert.ok(byKnn.auroc > byMaha.auroc + 0.1, `patch AUROC: in-slide kNN ${byKnn.auroc.toFixed(3)} vs Mahalanobis ${byMaha.auroc.toFixed(3)}`);
});

test('fit-reference with regionSize: a bank of the normal slide\'s region-cell tokens, used by region analyses', { timeout: 300_000 }, async () => {
  const regionBank = join(dir, 'region-bank.lmb');
  const header = await fitReference([normalPath], parseAnalysisParams({ model: MODEL, regionSize: 512 }), quietContext(), embedder, regionBank);
  const slide = await openSlide(normalPath);
  let cells: number;
  try {
    cells = (await planAnalysis({ slide }, parseAnalysisParams({ model: MODEL, regionSize: 512 }), quietContext())).plan.cells!.total;
  } finally {
    await slide.close();
  }
  assert.equal(header.entries, 'tokens');
  assert.equal(header.parameters.regionSize, 512);
  assert.equal(header.totalEmbeddings, cells, 'every tissue cell of the normal slide (under the budget)');
  assert.ok(header.count > 0 && header.count <= Math.ceil(cells * Number(header.parameters.coresetRatio)) && header.calibration.spread > 0);
  const out = join(dir, 'with-region-bank');
  const r = await analyzeSlide(slidePath, parseAnalysisParams({ model: MODEL, regionSize: 512, reference: regionBank }), quietContext(), { outDir: out, embedder }) as RegionAnalysisResult;
  assert.equal(r.scorer.method, 'knn-bank');
  assert.equal(r.scorer.reference?.entries, header.count);
  await assert.rejects(fitReference([normalPath], parseAnalysisParams({ model: MODEL, regionSize: 512, bankEntries: 'tiles' }), quietContext(), embedder, join(dir, 'x.lmb')), InvalidParameterError);
});

test('the region plan scores each tissue cell once; edge regions move inward, inside the slide', async () => {
  const slide = await openSlide(slidePath);
  try {
    const params = parseAnalysisParams({ model: MODEL, regionSize: 512 });
    const { plan } = await planAnalysis({ slide }, params, quietContext());
    const cells = plan.cells!;
    const seen = new Uint8Array(cells.cols * cells.rows);
    let k = 0;
    plan.tiles.forEach((region, i) => {
      assert.ok(region.x % 16 === 0 && region.y % 16 === 0 && region.x + 512 <= 1536 && region.y + 512 <= 1280, `region ${i} at (${region.x}, ${region.y})`);
      forEachOwnedCell(plan, i, (idx, col, row) => {
        assert.equal(idx, k++, 'cells are numbered in plan order');
        assert.ok(col * 16 >= region.x && col * 16 < region.x + 512 && row * 16 >= region.y && row * 16 < region.y + 512);
        assert.equal(seen[row * cells.cols + col], 0, `cell (${col}, ${row}) owned twice`);
        seen[row * cells.cols + col] = 1;
      });
    });
    assert.equal(k, cells.total);
    // the bottom row of regions (1280 = 2.5 × 512) is moved up to end at the slide edge
    assert.ok(plan.tiles.some((t) => t.y === 768), 'an edge region ends at the bottom edge');
    // exactly the cells with enough tissue are scored
    const mask = await computeTissueMask(slide, { maxSide: params.tissueMaskMaxSide });
    const fraction = tissueFractionLookup(mask);
    for (let row = 0; row < cells.rows; row++) for (let col = 0; col < cells.cols; col++) {
      const t = fraction(col * 16, row * 16, 16, 16);
      assert.equal(seen[row * cells.cols + col], t >= params.minTissue && t > 0 ? 1 : 0, `cell (${col}, ${row}) tissue ${t}`);
    }
  } finally {
    await slide.close();
  }
});

test('bad region sizes and combinations are refused with clear messages', async () => {
  const slide = await openSlide(slidePath);
  try {
    await assert.rejects(planAnalysis({ slide }, parseAnalysisParams({ model: MODEL, regionSize: 1000 }), quietContext()),
      (err: Error) => err instanceof InvalidParameterError && err.message === `regionSize 1000 is not a multiple of model '${MODEL}'s patch size 16 px`);
    await assert.rejects(planAnalysis({ slide }, parseAnalysisParams({ model: MODEL, regionSize: 512, mpp: 1 }), quietContext()),
      (err: Error) => err instanceof InvalidParameterError && /regionSize encodes level-0 pixels.*mpp 1/.test(err.message));
  } finally {
    await slide.close();
  }
  assert.throws(() => parseAnalysisParams({ regionSize: 32 }), /Expected integer between 64 and 8192 or null for regionSize but received 32/);
  assert.equal(paramsFromFlags({ 'region-size': '1024' }).regionSize, 1024);
  assert.throws(() => paramsFromFlags({ 'region-size': 'big' }), /for regionSize but received "big" of type string/);
  // a bank of pooled tile embeddings cannot score tokens
  const tileBank = join(dir, 'tiles.lmb');
  await fitReference([slidePath], parseAnalysisParams({ model: MODEL, bankEntries: 'tiles' }), quietContext(), embedder, tileBank);
  await assert.rejects(analyzeSlide(slidePath, parseAnalysisParams({ model: MODEL, regionSize: 512, reference: tileBank }), quietContext(), { outDir: join(dir, 'bad'), embedder }),
    (err: Error) => err instanceof InvalidParameterError && /holds pooled tile embeddings/.test(err.message));
});
