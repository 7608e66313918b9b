/**
 * Memory by design, checked without timing: an analysis is one pass over the slide, so the decoded
 * tiles it reads must not stay in the process-wide tile cache (they were never hit again, and the
 * cache filled with the slide's size up to its 64 MiB bound: 35 MiB at 1 Gpx, 64 MiB at 4.3 Gpx).
 * Readers honour `readRegion(…, { cache: false })`: same pixels, nothing kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { analyzeSlide } from '../../src/pipeline/analyze.ts';
import { openEmbedder } from '../../src/pipeline/open-embedder.ts';
import { quietContext } from '../../src/pipeline/stage.ts';
import { sharedTileCache, TileCache } from '../../src/io/tile-cache.ts';
import { openSlide } from '../../src/readers/registry.ts';

const slides = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/slides');
// TIFF family (Aperio SVS, JPEG tiles), DICOM (JPEG frames), NDPI (restart-interval JPEG strip).
const CASES = [
  { file: 'CMU-1-Small-Region.svs', region: [100, 150, 700, 520] },
  { file: 'CMU-1-Small-Region-dicom', region: [100, 150, 700, 520] },
  { file: 'test3-DAPI-2-387.ndpi', region: [300, 200, 900, 640] },
] as const;

for (const { file, region } of CASES) {
  test(`${file}: a read with cache: false gives the cached read's pixels and keeps no tile`, async () => {
    const slide = await openSlide(join(slides, file));
    try {
      sharedTileCache.clear();
      const [x, y, w, h] = region;
      const scan = await slide.readRegion(x, y, 0, w, h, { cache: false });
      assert.equal(sharedTileCache.stats.entries, 0, 'nothing kept');
      assert.equal(sharedTileCache.size, 0);
      const cached = await slide.readRegion(x, y, 0, w, h);
      assert.ok(scan.data.equals(cached.data), 'same pixels either way');
      assert.ok(sharedTileCache.stats.entries > 0, 'a default read does cache');
      // a scan still uses what is already cached (and adds nothing)
      const entries = sharedTileCache.stats.entries;
      const again = await slide.readRegion(x, y, 0, w, h, { cache: false });
      assert.ok(again.data.equals(cached.data));
      assert.equal(sharedTileCache.stats.entries, entries);
    } finally {
      await slide.close();
      sharedTileCache.clear();
    }
  });
}

test('TileCache.getOrLoad(store false): shared in flight, not kept; a storing caller joining keeps it', async () => {
  const cache = new TileCache(1 << 20);
  let loads = 0;
  const tile = () => ({ width: 2, height: 2, data: Buffer.alloc(12, 7) });
  const load = async () => { loads++; await new Promise((r) => setTimeout(r, 5)); return tile(); };
  const a = await cache.getOrLoad('a', load, false);
  assert.equal(a.data.length, 12);
  assert.equal(cache.size, 0);
  const [b1, b2] = await Promise.all([cache.getOrLoad('b', load, false), cache.getOrLoad('b', load)]);
  assert.equal(b1, b2, 'one decode shared');
  assert.equal(loads, 2);
  assert.equal(cache.size, 12, 'kept because one caller asked to store it');
  await cache.getOrLoad('b', load, false);
  assert.equal(loads, 2, 'a cached tile is used by a non-storing read');
});

test('analyzeSlide keeps no decoded tile in the shared cache at any stage', async () => {
  const out = await mkdtemp(join(tmpdir(), 'lamina-memory-'));
  const embedder = await openEmbedder('untrained-test-tiny', 'cpu');
  try {
    sharedTileCache.clear();
    const misses0 = sharedTileCache.stats.misses;
    const seen: string[] = [];
    const ctx = quietContext();
    ctx.progress = ({ stage }) => {
      seen.push(stage);
      assert.equal(sharedTileCache.stats.entries, 0, `tiles kept in the cache during ${stage}`);
    };
    const result = await analyzeSlide(join(slides, 'CMU-1-Small-Region.svs'), parseAnalysisParams({ model: 'untrained-test-tiny' }), ctx, { outDir: out, embedder });
    assert.ok(result.tiles.analysed > 10, `${result.tiles.analysed} tiles`);
    assert.ok(sharedTileCache.stats.misses > misses0, 'tiles were decoded through the cache');
    for (const stage of ['tissue', 'encode', 'score']) assert.ok(seen.includes(stage), `progress of ${stage}`);
  } finally {
    await embedder.close();
    await rm(out, { recursive: true, force: true });
  }
});
