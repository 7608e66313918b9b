import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp, { type TiffOptions } from 'sharp';
import { MemorySource } from '../../src/io/byte-source.ts';
import { openSlideSource } from '../../src/readers/registry.ts';

// A real H&E tile (512 × 512) as the one truth, encoded by libvips in each compression and layout.
const here = dirname(fileURLToPath(import.meta.url));
const he = join(here, '..', '..', '..', 'shared', 'slides', 'tcga-lung-rgb.png');
const W = 400, H = 300; // not a multiple of the tile size: partial edge tiles on every level

async function truth(): Promise<Buffer> {
  return sharp(he).extract({ left: 40, top: 60, width: W, height: H }).removeAlpha().raw().toBuffer();
}

async function encode(options: TiffOptions): Promise<Buffer> {
  return sharp(await truth(), { raw: { width: W, height: H, channels: 3 } })
    .tiff({ tile: true, tileWidth: 128, tileHeight: 128, pyramid: true, ...options })
    .toBuffer();
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

const cases: Array<{ name: string; options: TiffOptions; compression: string; maxDiff: number }> = [
  { name: 'uncompressed', options: { compression: 'none' }, compression: 'none', maxDiff: 0 },
  { name: 'LZW', options: { compression: 'lzw' }, compression: 'lzw', maxDiff: 0 },
  { name: 'LZW + horizontal predictor', options: { compression: 'lzw', predictor: 'horizontal' }, compression: 'lzw', maxDiff: 0 },
  { name: 'deflate + horizontal predictor', options: { compression: 'deflate', predictor: 'horizontal' }, compression: 'deflate', maxDiff: 0 },
  // lossy: libjpeg-turbo / libwebp at quality 95 stay within a few grey levels of the truth
  { name: 'JPEG (YCbCr, JPEGTables)', options: { compression: 'jpeg', quality: 95 }, compression: 'jpeg', maxDiff: 3 },
  { name: 'WebP', options: { compression: 'webp', quality: 95 }, compression: 'webp', maxDiff: 3 },
  { name: 'BigTIFF JPEG', options: { compression: 'jpeg', quality: 95, bigtiff: true }, compression: 'jpeg', maxDiff: 3 },
];

for (const c of cases) {
  test(`generic TIFF, ${c.name}: level 0 equals the source, pyramid levels are listed`, async () => {
    const expected = await truth();
    const slide = await openSlideSource(new MemorySource(`${c.name}.tiff`, await encode(c.options)));
    try {
      assert.equal(slide.format, 'generic-tiff');
      assert.deepEqual(slide.dimensions, { width: W, height: H });
      assert.ok(slide.levels.length >= 2, 'libvips writes at least one reduced level');
      assert.equal(slide.levels[0]!.compression, c.compression);
      assert.equal(slide.levels[0]!.tileWidth, 128);
      assert.ok(Math.abs(slide.levels[1]!.downsample - 2) < 0.01);
      const whole = await slide.readRegion(0, 0, 0, W, H);
      const diff = meanAbsDiff(whole.data, expected);
      assert.ok(diff <= c.maxDiff, `mean abs diff ${diff}`);
      // a read straddling four tiles and the right/bottom edges equals the same crop of the whole
      const part = await slide.readRegion(300, 200, 0, 150, 150);
      for (let y = 0; y < 150; y++) {
        for (let x = 0; x < 150; x++) {
          const o = (y * 150 + x) * 3;
          const inside = 300 + x < W && 200 + y < H;
          const want = inside ? whole.data.subarray(((200 + y) * W + 300 + x) * 3, ((200 + y) * W + 300 + x) * 3 + 3) : Buffer.from([255, 255, 255]);
          assert.deepEqual(part.data.subarray(o, o + 3), want, `pixel (${x}, ${y})`);
        }
      }
      const top = await slide.readRegion(0, 0, slide.levels.length - 1, 64, 64);
      assert.equal(top.data.length, 64 * 64 * 3);
    } finally {
      await slide.close();
    }
  });
}

test('a stripped (untiled) TIFF is refused by name, not crashed on', async () => {
  const buf = await sharp(await truth(), { raw: { width: W, height: H, channels: 3 } }).tiff({ compression: 'lzw' }).toBuffer();
  await assert.rejects(openSlideSource(new MemorySource('stripped.tiff', buf)), {
    name: 'UnsupportedSlideError',
    message: /stripped\.tiff: not a supported slide format \(.*generic-tiff: TIFF is not tiled/,
  });
});
