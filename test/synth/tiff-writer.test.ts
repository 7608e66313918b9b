import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromFile } from 'geotiff';
import sharp from 'sharp';
import { BigTiffTileWriter, TiffWriteError, type TiledLevelSpec } from '../../src/synth/tiff-writer.ts';
import { hasOpenSlide, openslideJson, tempDir } from './helpers.ts';

const LEVELS: TiledLevelSpec[] = [
  { width: 1000, height: 700, tileWidth: 256, tileHeight: 256, mppX: 0.5, mppY: 0.5 },
  { width: 250, height: 175, tileWidth: 256, tileHeight: 256, mppX: 2, mppY: 2 },
];

/** Colour of tile (col, row) of a level: distinct per tile so misplaced tiles show. */
const colourOf = (level: number, col: number, row: number) => [40 + col * 50, 30 + row * 60, level === 0 ? 60 : 200];

async function solidJpeg(rgb: number[], size = 256): Promise<Uint8Array> {
  const raw = Buffer.alloc(size * size * 3);
  for (let i = 0; i < size * size; i++) raw.set(rgb, i * 3);
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 90, chromaSubsampling: '4:2:0' }).toBuffer();
}

/** Writes the two-level test file with tiles in reverse order (the writer must not care). */
async function writeTestFile(path: string): Promise<number> {
  const w = BigTiffTileWriter.create(path, { levels: LEVELS, compression: 7, photometric: 6, samplesPerPixel: 3, description: 'writer test', software: 'lamina test' });
  const jobs: Array<[number, number, number]> = [];
  for (let l = 0; l < LEVELS.length; l++) {
    const g = w.grid(l);
    for (let r = 0; r < g.rows; r++) for (let c = 0; c < g.cols; c++) jobs.push([l, c, r]);
  }
  for (const [l, c, r] of jobs.reverse()) w.writeTile(l, c, r, await solidJpeg(colourOf(l, c, r)));
  return w.close();
}

test('writes a BigTIFF that geotiff parses: header, levels, tiles, tags', async (t) => {
  const path = join(tempDir(t), 'w.tiff');
  const bytes = await writeTestFile(path);
  const file = readFileSync(path);
  assert.equal(file.length, bytes);
  assert.equal(file.toString('latin1', 0, 2), 'II');
  assert.equal(file.readUInt16LE(2), 43, 'BigTIFF version');
  assert.equal(file.readUInt16LE(4), 8, 'offset size');
  const tiff = await fromFile(path);
  assert.equal(await tiff.getImageCount(), 2);
  for (let l = 0; l < 2; l++) {
    const im = await tiff.getImage(l);
    const fd = im.fileDirectory;
    assert.equal(im.getWidth(), LEVELS[l].width);
    assert.equal(im.getHeight(), LEVELS[l].height);
    assert.ok(im.isTiled);
    assert.equal(im.getTileWidth(), 256);
    assert.equal(fd.getValue('Compression'), 7);
    assert.equal(fd.getValue('PhotometricInterpretation'), 6);
    assert.deepEqual(Array.from((await fd.loadValue('YCbCrSubSampling')) as Uint16Array), [2, 2]);
    assert.equal(fd.getValue('NewSubfileType'), l === 0 ? 0 : 1);
    assert.equal(await fd.loadValue('ResolutionUnit'), 3);
    const xres = (await fd.loadValue('XResolution')) as unknown as Uint32Array;
    assert.equal(xres[0] / xres[1], 10000 / LEVELS[l].mppX!, 'pixels per cm');
    const offsets = (await fd.loadValue('TileOffsets')) as number[];
    assert.equal(offsets.length, Math.ceil(LEVELS[l].width / 256) * Math.ceil(LEVELS[l].height / 256));
  }
  // TIFF ASCII values end in NUL, which geotiff keeps.
  assert.equal(String(await (await tiff.getImage(0)).fileDirectory.loadValue('ImageDescription')).replace(/\0+$/, ''), 'writer test');
});

test('tiles land where they were written: libvips and OpenSlide read the colours back', async (t) => {
  const path = join(tempDir(t), 'w.tiff');
  await writeTestFile(path);
  for (let l = 0; l < 2; l++) {
    const { data, info } = await sharp(path, { page: l }).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.width, LEVELS[l].width);
    for (const [c, r] of [[0, 0], [1, 0], [0, 1], [3, 2]]) {
      const x = c * 256 + 100, y = r * 256 + 100;
      if (x >= info.width || y >= info.height) continue;
      const p = (y * info.width + x) * 3;
      const want = colourOf(l, c, r);
      for (let k = 0; k < 3; k++) assert.ok(Math.abs(data[p + k] - want[k]) <= 4, `level ${l} tile (${c},${r}) channel ${k}: ${data[p + k]} vs ${want[k]}`);
    }
  }
  if (!hasOpenSlide) return t.skip('python3-openslide not installed');
  const os = openslideJson(path, `s = openslide.OpenSlide(path)
print(json.dumps({"levels": s.level_dimensions, "vendor": s.properties.get("openslide.vendor"),
  "px": list(s.read_region((3 * 256 + 100, 2 * 256 + 100), 0, (1, 1)).getpixel((0, 0)))[:3],
  "px1": list(s.read_region((0, 0), 1, (1, 1)).getpixel((0, 0)))[:3]}))`);
  assert.deepEqual(os.levels, [[1000, 700], [250, 175]]);
  assert.equal(os.vendor, 'generic-tiff');
  os.px.forEach((v: number, k: number) => assert.ok(Math.abs(v - colourOf(0, 3, 2)[k]) <= 4));
  os.px1.forEach((v: number, k: number) => assert.ok(Math.abs(v - colourOf(1, 0, 0)[k]) <= 4));
});

test('misuse is refused with a message naming the tile', async (t) => {
  const dir = tempDir(t);
  const jpeg = await solidJpeg([1, 2, 3]);
  const w = BigTiffTileWriter.create(join(dir, 'a.tiff'), { levels: LEVELS, compression: 7, photometric: 6, samplesPerPixel: 3 });
  w.writeTile(0, 0, 0, jpeg);
  assert.throws(() => w.writeTile(0, 0, 0, jpeg), (e: unknown) => e instanceof TiffWriteError && /tile \(0, 0\) of level 0 written twice/.test(e.message));
  assert.throws(() => w.writeTile(0, 4, 0, jpeg), /tile \(4, 0\) is outside level 0/);
  assert.throws(() => w.writeTile(2, 0, 0, jpeg), /outside level 2/);
  assert.throws(() => w.close(), /tile \(1, 0\) of level 0 was never written/);
  assert.throws(() => w.writeTile(0, 1, 0, jpeg), /after close/);
  assert.throws(
    () => BigTiffTileWriter.create(join(dir, 'b.tiff'), { levels: [{ ...LEVELS[0], tileWidth: 100 }], compression: 7, photometric: 6, samplesPerPixel: 3 }),
    /Expected multiple of 16 for levels\[0\].tileWidth but received 100/,
  );
});
