import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { MemorySource } from '../../src/io/byte-source.ts';
import { TileCache } from '../../src/io/tile-cache.ts';
import { openNdpi } from '../../src/readers/ndpi/ndpi.ts';
import { cropRgb, fixturesDir } from './dicom-test-utils.ts';
import type { RgbImage } from '../../src/readers/types.ts';

/**
 * Restart intervals that do not span exactly one MCU row, which the real slide lacks: JPEGs from
 * tools/make-restart-jpegs.sh (600 × 360, 16 × 16 MCUs, 38 per row, last MCU row half outside)
 * wrapped in a minimal NDPI with McuStarts found independently here.
 */

/** Offsets (from the JPEG start) where each restart interval begins: after SOS, then after each RST. */
function scanStarts(jpeg: Buffer): number[] {
  let at = 2;
  while (jpeg[at + 1] !== 0xda) at += 2 + jpeg.readUInt16BE(at + 2);
  const starts = [at + 2 + jpeg.readUInt16BE(at + 2)];
  for (let i = starts[0]!; i < jpeg.length - 1; i++) if (jpeg[i] === 0xff && jpeg[i + 1]! >= 0xd0 && jpeg[i + 1]! <= 0xd7) starts.push(i + 2);
  return starts;
}

/** A one-level NDPI: header, the JPEG strip, McuStarts, then the IFD (8-byte next pointer and value extensions). */
function wrapNdpi(jpeg: Buffer, width: number, height: number, withStarts: boolean): Buffer {
  const starts = scanStarts(jpeg);
  const stripAt = 16;
  const startsAt = stripAt + jpeg.length + (jpeg.length % 2);
  const ratAt = startsAt + 4 * starts.length;
  const ifdAt = ratAt + 8;
  const entries: Array<[number, number, number, number]> = [
    [256, 4, 1, width], [257, 4, 1, height], [259, 3, 1, 7], [262, 3, 1, 6], [273, 4, 1, stripAt], [277, 3, 1, 3],
    [278, 4, 1, height], [279, 4, 1, jpeg.length], [282, 5, 1, ratAt], [283, 5, 1, ratAt], [296, 3, 1, 3], [65420, 3, 1, 1],
    [65421, 11, 1, 0], [65426, 4, starts.length, startsAt],
  ].filter((e) => withStarts || e[0] !== 65426) as Array<[number, number, number, number]>;
  const ifd = Buffer.alloc(2 + 12 * entries.length + 8 + 4 * entries.length);
  ifd.writeUInt16LE(entries.length, 0);
  entries.forEach(([tag, type, count, value], i) => {
    const at = 2 + 12 * i;
    ifd.writeUInt16LE(tag, at); ifd.writeUInt16LE(type, at + 2); ifd.writeUInt32LE(count, at + 4);
    if (tag === 65421) ifd.writeFloatLE(20, at + 8);
    else if (type === 3 && count === 1) ifd.writeUInt16LE(value, at + 8);
    else ifd.writeUInt32LE(value, at + 8);
  });
  const head = Buffer.alloc(16);
  head.write('II*\0', 0, 'latin1');
  head.writeUInt32LE(ifdAt, 4);
  const table = Buffer.alloc(4 * starts.length);
  starts.forEach((s, i) => table.writeUInt32LE(s, 4 * i));
  const rational = Buffer.alloc(8);
  rational.writeUInt32LE(40000, 0); rational.writeUInt32LE(1, 4);
  return Buffer.concat([head, jpeg, Buffer.alloc(jpeg.length % 2), table, rational, ifd]);
}

async function wholeDecode(jpeg: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

function mad(a: RgbImage, b: RgbImage): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += Math.abs(a.data[i]! - b.data[i]!);
  return s / a.data.length;
}

const REGIONS: Array<[number, number, number, number]> = [[20, 40, 100, 50], [0, 0, 600, 360], [301, 17, 250, 300], [590, 350, 40, 40], [150, 200, 16, 16]];

for (const [r, layout] of [[19, 'two intervals per MCU row'], [5, 'intervals straddling row ends'], [76, 'one interval per two MCU rows']] as const) {
  for (const withStarts of [true, false]) {
    test(`restart interval ${r} MCUs (${layout}), McuStarts ${withStarts ? 'tag' : 'scanned'}: regions equal the whole-JPEG decode`, async () => {
      const jpeg = readFileSync(join(fixturesDir, 'ndpi', `restart-${r}.jpg`));
      const whole = await wholeDecode(jpeg);
      const slide = await openNdpi(new MemorySource(`r${r}.ndpi`, wrapNdpi(jpeg, 600, 360, withStarts)), new TileCache(0));
      try {
        assert.deepEqual(slide.levels.map((l) => [l.width, l.height]), [[600, 360], [300, 180], [150, 90], [75, 45]]);
        const level = slide.levels[0]!;
        if (r === 19) assert.deepEqual([level.tileWidth, level.tileHeight], [304, 16]);
        if (r === 5) assert.deepEqual([level.tileWidth, level.tileHeight], [600, 80]); // 5 MCU rows hold 38 intervals
        if (r === 76) assert.deepEqual([level.tileWidth, level.tileHeight], [600, 32]);
        for (const [x, y, w, h] of REGIONS) {
          const got = await slide.readRegion(x, y, 0, w, h);
          const iw = Math.min(w, 600 - x);
          const ih = Math.min(h, 360 - y);
          // chroma upsampling sees other neighbours at cut edges: near-equal, not bit-equal
          const d = mad(cropRgb(got, 0, 0, iw, ih), cropRgb(whole, x, y, iw, ih));
          assert.ok(d <= 2, `region ${x},${y} ${w}×${h}: MAD ${d.toFixed(3)}`);
          if (iw < w) assert.equal(got.data[(w - 1) * 3], 255, 'outside the image is white');
        }
      } finally { await slide.close(); }
    });
  }
}

test('a small region decodes only the intervals it overlaps (partial-row intervals)', async () => {
  const jpeg = readFileSync(join(fixturesDir, 'ndpi', 'restart-19.jpg'));
  const slide = await openNdpi(new MemorySource('r19.ndpi', wrapNdpi(jpeg, 600, 360, true)), new TileCache(0));
  try {
    await slide.readRegion(20, 40, 0, 100, 50); // columns 20..120 → first tile column; rows 40..90 → MCU rows 2..5
    assert.equal(slide.stats.intervalsDecoded, 4);
    assert.equal(scanStarts(jpeg).length, 46);
  } finally { await slide.close(); }
});
