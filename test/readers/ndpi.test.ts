import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FileSource } from '../../src/io/byte-source.ts';
import { TileCache } from '../../src/io/tile-cache.ts';
import { openNdpi } from '../../src/readers/ndpi/ndpi.ts';
import { openSlide } from '../../src/readers/registry.ts';
import { cropRgb, fixturesDir, loadCases, meanAbsDiff, slidesDir, type RegionCase } from './dicom-test-utils.ts';

const NDPI = join(slidesDir, 'test3-DAPI-2-387.ndpi');
interface NdpiFixtures {
  levels: number[][]; downsamples: number[]; mpp: number[]; objectivePower: number; associated: string[];
  macroSize: number[]; macroCrop: { box: number[]; png: string }; cases: RegionCase[];
}
const ref = loadCases<NdpiFixtures>('ndpi');
const open = async (cache = new TileCache(64 << 20)) => openNdpi(await FileSource.open(NDPI, 'test3-DAPI-2-387.ndpi'), cache);

test('NDPI metadata and levels match OpenSlide, missing levels synthesised', async () => {
  const slide = await open();
  try {
    assert.equal(slide.format, 'ndpi');
    assert.equal(slide.vendor, 'hamamatsu');
    assert.deepEqual(slide.levels.map((l) => [l.width, l.height]), ref.levels);
    slide.levels.forEach((l, i) => assert.ok(Math.abs(l.downsample - ref.downsamples[i]!) < 1e-9, `level ${i} downsample`));
    assert.ok(Math.abs(slide.mpp!.x - ref.mpp[0]!) < 1e-9 && Math.abs(slide.mpp!.y - ref.mpp[1]!) < 1e-9);
    assert.equal(slide.objectivePower, ref.objectivePower);
    const names = slide.associatedImages.map((a) => a.name);
    for (const n of ref.associated) assert.ok(names.includes(n), `associated image ${n}`);
    assert.ok(names.includes('map'), 'map image (OpenSlide 3.4 does not expose it)');
    assert.match(slide.warnings.join('\n'), /248 × 304, 124 × 152, 62 × 76 are not stored/);
    // the macro's YCbCrSubsampling tag is absent (TIFF default 2×2) while its JPEG is 1×1
    assert.match(slide.warnings.join('\n'), /test3-DAPI-2-387.ndpi: macro: YCbCrSubsampling says 2×, the JPEG data says 1×; trusting the JPEG/);
    assert.equal(slide.properties['hamamatsu.Created'], '2011/05/23');
  } finally { await slide.close(); }
});

for (const c of ref.cases) {
  test(`NDPI region level ${c.level} at (${c.x}, ${c.y}) ${c.width} × ${c.height} matches OpenSlide`, async () => {
    const slide = await open();
    try {
      const img = await slide.readRegion(c.x, c.y, c.level, c.width, c.height);
      const mad = await meanAbsDiff(img, join(fixturesDir, 'ndpi', c.png));
      assert.ok(mad.every((d) => d <= 2), `mean absolute difference per channel ${mad.map((d) => d.toFixed(3))}`);
    } finally { await slide.close(); }
  });
}

test('NDPI macro matches OpenSlide and the map decodes', async () => {
  const slide = await open();
  try {
    const macro = await slide.readAssociatedImage('macro');
    assert.deepEqual([macro.width, macro.height], ref.macroSize);
    const [l, t, r, b] = ref.macroCrop.box as [number, number, number, number];
    const mad = await meanAbsDiff(cropRgb(macro, l, t, r - l, b - t), join(fixturesDir, 'ndpi', ref.macroCrop.png));
    assert.ok(mad.every((d) => d <= 2), `macro MAD ${mad}`);
    const map = await slide.readAssociatedImage('map');
    assert.deepEqual([map.width, map.height], [594, 203]);
    assert.ok(map.data.some((v) => v !== map.data[0]), 'map is not blank');
  } finally { await slide.close(); }
});

test('the registry detects the NDPI by content', async () => {
  const slide = await openSlide(NDPI);
  try {
    assert.equal(slide.format, 'ndpi');
    assert.equal(slide.levels.length, ref.levels.length);
  } finally { await slide.close(); }
});

test('a level-0 region decodes only the restart intervals it overlaps', async () => {
  const slide = await open();
  try {
    const level0Intervals = 4864 / 8; // one interval per 8-pixel MCU row on this slide
    const y = 1001;
    const h = 256;
    const expected = Math.floor((y + h - 1) / 8) - Math.floor(y / 8) + 1;
    await slide.readRegion(700, y, 0, 256, h);
    assert.equal(slide.stats.intervalsDecoded, expected);
    assert.ok(slide.stats.intervalsDecoded < level0Intervals / 10, `${slide.stats.intervalsDecoded} of ${level0Intervals}`);
    // memory bound: the one decode held only those rows, not the level
    assert.equal(slide.stats.largestDecodePixels, expected * 8 * 3968);
    assert.ok(slide.stats.bytesRead < 2060686 / 10, `${slide.stats.bytesRead} bytes read of a 2,060,686-byte level`);
    // the same region again comes from the tile cache
    await slide.readRegion(700, y, 0, 256, h);
    assert.equal(slide.stats.intervalsDecoded, expected);
    // a synthesised level reads its stored level's intervals only (level 6 = level 3 at 1/8)
    const before = slide.stats.intervalsDecoded;
    await slide.readRegion(0, 0, 6, 8, 8);
    assert.equal(slide.stats.intervalsDecoded - before, 8);
  } finally { await slide.close(); }
});

test('memory does not grow with the level: same-size regions at level 0 and level 3 decode alike', async () => {
  const slide = await open(new TileCache(0));
  try {
    await slide.readRegion(0, 2048, 0, 64, 64);
    const level0 = slide.stats.largestDecodePixels;
    const fresh = await open(new TileCache(0));
    await fresh.readRegion(0, 2048, 3, 64, 64);
    const level3 = fresh.stats.largestDecodePixels;
    await fresh.close();
    // both decode 8 MCU rows; pixels scale with the row width only (3968 vs 496), never the height
    assert.equal(level0, 8 * 8 * 3968);
    assert.equal(level3, 8 * 8 * 496);
  } finally { await slide.close(); }
});
