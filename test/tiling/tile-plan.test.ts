import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeTissueMask } from '../../src/tissue/tissue-mask.ts';
import { planTiles, type TilingParams } from '../../src/tiling/tile-plan.ts';
import { readTiles, readUnits } from '../../src/tiling/tile-reader.ts';
import type { Slide } from '../../src/readers/types.ts';
import { InvalidParameterError, UnprocessableError } from '../../src/errors.ts';
import { memorySlide, tissueColour, WHITE } from '../pipeline/memory-slide.ts';

const base: TilingParams = { tileSize: 224, stride: null, level: null, mpp: null, magnification: null, minTissue: 0.5 };

test('native resolution: a full grid of level-0 tiles from (0, 0), in block order', async () => {
  const slide = memorySlide({ width: 2000, height: 1500, pixel: tissueColour, tileSize: 448 });
  const plan = planTiles(slide, await computeTissueMask(slide, { maxSide: 400 }), base);
  assert.equal(plan.levelIndex, 0);
  assert.deepEqual(plan.grid, { cols: 8, rows: 6 });
  assert.equal(plan.tiles.length, 48);
  assert.ok(plan.tiles.every((t) => t.x === t.col * 224 && t.y === t.row * 224 && t.width === 224));
  assert.equal(plan.storedTile.aligned, true, '224 divides the stored 448');
  // Block order: tiles of one block are consecutive, blocks in row-major order.
  const blocks = plan.tiles.map((t) => t.block);
  assert.deepEqual(blocks, [...blocks].sort((a, b) => a - b));
  assert.deepEqual(plan.tiles.map((t) => t.index), plan.tiles.map((_, i) => i));
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(plan)));
});

test('unaligned stored tiles are reported', async () => {
  const slide = memorySlide({ width: 1000, height: 1000, pixel: tissueColour, tileSize: 240 });
  const plan = planTiles(slide, await computeTissueMask(slide, { maxSide: 200 }), base);
  assert.equal(plan.storedTile.aligned, false);
});

test('requested mpp and level: level chosen, read size and level-0 size follow', async () => {
  const slide = memorySlide({ width: 4000, height: 4000, pixel: tissueColour, downsamples: [1, 4, 16], mpp: 0.25 });
  const mask = await computeTissueMask(slide, { maxSide: 400 });
  const at05 = planTiles(slide, mask, { ...base, mpp: 0.5 });
  assert.equal(at05.levelIndex, 0);
  assert.equal(at05.readSizePx, 448);
  assert.equal(at05.tileSizeLevel0, 448);
  assert.equal(at05.analysisMpp, 0.5);
  const at1 = planTiles(slide, mask, { ...base, mpp: 1 });
  assert.equal(at1.levelIndex, 1);
  assert.equal(at1.readSizePx, 224);
  assert.equal(at1.tileSizeLevel0, 896);
  const level2 = planTiles(slide, mask, { ...base, level: 2, tileSize: 64 });
  assert.equal(level2.levelIndex, 2);
  assert.equal(level2.tileSizeLevel0, 1024);
  const mag10 = planTiles(slide, mask, { ...base, magnification: 10 });
  assert.equal(mag10.analysisDownsample, 4);
  assert.equal(mag10.levelIndex, 1);
});

test('stride below the tile size overlaps tiles', async () => {
  const slide = memorySlide({ width: 1000, height: 500, pixel: tissueColour });
  const plan = planTiles(slide, await computeTissueMask(slide, { maxSide: 200 }), { ...base, tileSize: 200, stride: 100 });
  assert.deepEqual(plan.grid, { cols: 9, rows: 4 });
  assert.equal(plan.strideLevel0, 100);
});

test('metadata a request needs, and tissue a plan needs, give clear errors', async () => {
  const noMpp = memorySlide({ width: 1000, height: 1000, pixel: tissueColour, mpp: null, objectivePower: null, name: 'nompp.tiff' });
  const mask = await computeTissueMask(noMpp, { maxSide: 200 });
  assert.throws(() => planTiles(noMpp, mask, { ...base, mpp: 0.5 }), (e: unknown) => e instanceof InvalidParameterError && /nompp\.tiff does not record its pixel size/.test(e.message));
  assert.throws(() => planTiles(noMpp, mask, { ...base, magnification: 20 }), /does not record its objective power/);
  assert.throws(() => planTiles(noMpp, mask, { ...base, level: 5 }), /has 2 level\(s\); level 5 does not exist/);
  // A thin strip of tissue: every tile is under 50% tissue.
  const strip = memorySlide({ width: 1000, height: 1000, pixel: (x, y) => (y % 224 < 60 ? tissueColour(x, y) : WHITE), name: 'strip.tiff' });
  await assert.rejects(async () => planTiles(strip, await computeTissueMask(strip, { maxSide: 500 }), base), (e: unknown) => e instanceof UnprocessableError && /no tile has at least 50% tissue/.test(e.message));
});

test('tile reads: pixels equal per-tile reads, each stored tile decoded once, resized when needed', async () => {
  const slide = memorySlide({ width: 1400, height: 1000, pixel: (x, y) => [x % 256, y % 256, (x * y) % 251] });
  const mask = await computeTissueMask(memorySlide({ width: 1400, height: 1000, pixel: tissueColour }), { maxSide: 200 });
  const plan = planTiles(slide, mask, base);
  const reads = recordReads(slide);
  const images = await readTiles(slide, plan, plan.tiles, undefined, 3);
  // 224-px tiles over 256-px stored tiles: no stored tile lies under two reads.
  const seen = new Map<string, number>();
  for (const r of reads) {
    for (let y = Math.floor(r.y / 256); y * 256 < r.y + r.h; y++) {
      for (let x = Math.floor(r.x / 256); x * 256 < r.x + r.w; x++) seen.set(`${x},${y}`, (seen.get(`${x},${y}`) ?? 0) + 1);
    }
  }
  assert.ok(reads.length > 1 && reads.length < plan.tiles.length, `${reads.length} reads for ${plan.tiles.length} tiles`);
  assert.deepEqual([...seen.values()].filter((n) => n > 1), [], 'each stored tile read once');
  for (const [i, t] of plan.tiles.entries()) {
    const direct = await slide.readRegion(t.x, t.y, 0, 224, 224);
    assert.ok(images[i]!.data.equals(direct.data), `tile ${i} pixels`);
  }
  const half = planTiles(slide, mask, { ...base, mpp: 0.5 }); // 448 level-0 px → 224
  const resized = await readTiles(slide, half, half.tiles.slice(0, 2));
  assert.equal(resized[0]!.width, 224);
  assert.equal(resized[0]!.data.length, 224 * 224 * 3);
});

test('tile reads: tiles across slab and run edges (600-px tiles over 256-px stored tiles) are filled from every unit', async () => {
  const slide = memorySlide({ width: 3000, height: 1300, pixel: (x, y) => [x % 251, y % 241, (x + 3 * y) % 239] });
  const mask = await computeTissueMask(memorySlide({ width: 3000, height: 1300, pixel: tissueColour }), { maxSide: 300 });
  const plan = planTiles(slide, mask, { ...base, tileSize: 600 });
  const units = readUnits(slide.levels[0]!, plan.tiles, plan.readStridePx, plan.readSizePx);
  const cutInside = units.some((u) => u.tiles.some((i) => plan.tiles[i]!.x < u.x || plan.tiles[i]!.x + 600 > u.x + u.width));
  assert.ok(cutInside, 'a run is cut inside a tile');
  assert.ok(units.every((u) => u.height <= 256 && u.width <= 4 * 256), 'units are at most one slab by 4 stored tiles');
  const images = await readTiles(slide, plan, plan.tiles, undefined, 4);
  for (const [i, t] of plan.tiles.entries()) {
    assert.ok(images[i]!.data.equals((await slide.readRegion(t.x, t.y, 0, 600, 600)).data), `tile ${i} pixels`);
  }
});

/** Records the level-0 rectangles of `slide.readRegion` calls from now on. */
function recordReads(slide: Slide): Array<{ x: number; y: number; w: number; h: number }> {
  const reads: Array<{ x: number; y: number; w: number; h: number }> = [];
  const inner = slide.readRegion.bind(slide);
  slide.readRegion = (x, y, level, w, h, o) => {
    reads.push({ x, y, w, h });
    return inner(x, y, level, w, h, o);
  };
  return reads;
}
