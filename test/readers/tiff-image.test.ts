import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { MemorySource } from '../../src/io/byte-source.ts';

// A 100 KiB tile cache (this file runs in its own process): the 384 × 256 test level (288 KiB) is
// then "larger than the cache", which sends multi-tile reads through the one-call libvips mosaic.
process.env.LAMINA_TILE_CACHE_MB = '0.1';
const { openSlideSource } = await import('../../src/readers/registry.ts');
import type { RgbImage } from '../../src/readers/types.ts';
import { buildTiff, tiledRgbTags } from './helpers/tiny-tiff.ts';

const here = dirname(fileURLToPath(import.meta.url));
const he = join(here, '..', '..', '..', 'shared', 'slides', 'tcga-lung-rgb.png');

/** A 3 × 2-tile JPEG TIFF (128-px tiles, full YCbCr JPEG streams) cut from the real H&E tile. */
async function jpegTiff(corruptTile = -1): Promise<Buffer> {
  const tiles: Buffer[] = [];
  for (let ty = 0; ty < 2; ty++) {
    for (let tx = 0; tx < 3; tx++) {
      let t = await sharp(he).extract({ left: tx * 128, top: ty * 128, width: 128, height: 128 }).removeAlpha().jpeg({ quality: 90 }).toBuffer();
      if (ty * 3 + tx === corruptTile) t = Buffer.concat([t.subarray(0, 200), Buffer.alloc(50, 0xff)]);
      tiles.push(t);
    }
  }
  return buildTiff([{ tags: tiledRgbTags(384, 256, 128, 7).map((t) => (t[0] === 262 ? [262, 3, [6]] : t)), blocks: tiles }]);
}

test('a multi-tile read decoded as one libvips mosaic equals the same pixels decoded tile by tile', async () => {
  const file = await jpegTiff();
  const a = await openSlideSource(new MemorySource('m.tiff', file));
  const mosaic = await a.readRegion(50, 30, 0, 300, 200); // 3 × 2 tiles: one libvips call
  assert.ok(mosaic.data.equals((await a.readRegion(50, 30, 0, 300, 200)).data), 'repeatable');
  // aligned single-tile reads take the per-tile codec path
  const b = await openSlideSource(new MemorySource('t.tiff', file));
  const tiles: RgbImage[] = [];
  for (let ty = 0; ty < 2; ty++) for (let tx = 0; tx < 3; tx++) tiles.push(await b.readRegion(tx * 128, ty * 128, 0, 128, 128));
  for (let y = 0; y < 200; y++) {
    for (const x of [0, 77, 78, 205, 206, 299]) {
      const px = 50 + x, py = 30 + y;
      const tile = tiles[Math.floor(py / 128) * 3 + Math.floor(px / 128)]!;
      const o = ((py % 128) * 128 + (px % 128)) * 3;
      assert.deepEqual([...mosaic.data.subarray((y * 300 + x) * 3, (y * 300 + x) * 3 + 3)], [...tile.data.subarray(o, o + 3)], `(${x}, ${y})`);
    }
  }
  await a.close();
  await b.close();
});

test('a broken tile inside a mosaic read is still reported by name', async () => {
  const slide = await openSlideSource(new MemorySource('broken.tiff', await jpegTiff(4)));
  await assert.rejects(slide.readRegion(0, 0, 0, 384, 256), { name: 'CorruptSlideError', message: /^broken\.tiff: level 0 tile \(1, 1\): JPEG data is corrupt/ });
  await slide.close();
});
