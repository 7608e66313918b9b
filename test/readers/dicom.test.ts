import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSlide } from '../../src/readers/registry.ts';
import { WSI_SOP_CLASS } from '../../src/readers/dicom/dicom-header.ts';
import type { DicomSlide } from '../../src/readers/dicom/dicom-slide.ts';
import { UnsupportedSlideError } from '../../src/errors.ts';
import { fixturesDir, loadCases, meanAbsDiff, slidesDir } from './dicom-test-utils.ts';
import { encapsulate, part10, realFrames, type Item } from './dicom-writer.ts';

const SERIES = join(slidesDir, 'CMU-1-Small-Region-dicom');
const ref = loadCases<{ levels: number[][]; cases: Array<{ level: number; x: number; y: number; width: number; height: number; png: string }> }>('dicom');

test('DICOM series folder: 12 levels ordered by size, mpp from PixelSpacing, RGB/YCbCr quirk reported', async () => {
  const slide = await openSlide(SERIES);
  try {
    assert.equal(slide.format, 'dicom');
    assert.deepEqual(slide.levels.map((l) => [l.width, l.height]), ref.levels);
    assert.deepEqual(slide.levels[0]!.tileWidth, 500);
    assert.equal(slide.levels[0]!.compression, 'jpeg');
    assert.ok(Math.abs(slide.mpp!.x - 0.499) < 1e-9 && Math.abs(slide.mpp!.y - 0.499) < 1e-9);
    assert.match(slide.warnings.join('\n'), /PhotometricInterpretation says RGB/);
  } finally { await slide.close(); }
});

for (const c of ref.cases) {
  test(`DICOM region level ${c.level} at (${c.x}, ${c.y}) ${c.width} × ${c.height} matches DCMTK's frames`, async () => {
    const slide = await openSlide(SERIES);
    try {
      const mad = await meanAbsDiff(await slide.readRegion(c.x, c.y, c.level, c.width, c.height), join(fixturesDir, 'dicom', c.png));
      assert.ok(mad.every((d) => d <= 2), `mean absolute difference per channel ${mad.map((d) => d.toFixed(3))}`);
    } finally { await slide.close(); }
  });
}

test('one file of the series opens the whole series; a region decodes only its frames', async () => {
  const slide = await openSlide(join(SERIES, 'level-1-frames-0-9.dcm')) as DicomSlide;
  try {
    assert.equal(slide.levels.length, 12);
    await slide.readRegion(0, 0, 0, 256, 256);
    assert.equal(slide.framesDecoded, 1);
    await slide.readRegion(400, 400, 0, 200, 200); // crosses four 500 × 500 tiles, one cached
    assert.equal(slide.framesDecoded, 4);
  } finally { await slide.close(); }
});

/** A tmp folder with crafted instances made from the real level-1 frames (3 × 3 tiles of 500). */
function craftSeries(opts: { sparse: boolean; table: boolean; split: number; dropTile?: number; imageType?: string; spacing?: boolean }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lamina-dicom-'));
  const frames = realFrames(join(SERIES, 'level-1-frames-0-9.dcm'));
  const order = [8, 3, 0, 5, 1, 7, 2, 6, 4].filter((t) => t !== opts.dropTile); // shuffled tile order
  const ds: Item = [
    [0x00080016, 'UI', WSI_SOP_CLASS], [0x0020000e, 'UI', '1.2.826.0.1.3680043.8.498.1'],
    [0x00280002, 'US', [3]], [0x00280004, 'CS', 'YBR_FULL_422'], [0x00280006, 'US', [0]],
    [0x00280008, 'IS', String(opts.sparse ? order.length : 9)], [0x00280010, 'US', [500]], [0x00280011, 'US', [500]],
    [0x00280100, 'US', [8]], [0x00480006, 'UL', [1110]], [0x00480007, 'UL', [1483]],
    [0x00209311, 'CS', opts.sparse ? 'TILED_SPARSE' : 'TILED_FULL'],
  ];
  if (opts.imageType !== '') ds.push([0x00080008, 'CS', opts.imageType ?? 'DERIVED\\PRIMARY\\VOLUME\\NONE']);
  if (opts.spacing !== false) ds.push([0x52009229, 'SQ', [[[0x00289110, 'SQ', [[[0x00280030, 'DS', '0.000998\\0.000998']]]]]]]);
  if (opts.sparse) {
    ds.push([0x52009230, 'SQ', order.map((t) => [[0x0048021a, 'SQ', [[[0x0048021e, 'SL', [(t % 3) * 500 + 1]], [0x0048021f, 'SL', [Math.floor(t / 3) * 500 + 1]]]]]] as Item)]);
  }
  const pixels = encapsulate(opts.sparse ? order.map((t) => frames[t]!) : frames, opts.table, opts.split);
  writeFileSync(join(dir, 'level.dcm'), part10(WSI_SOP_CLASS, '1.2.840.10008.1.2.4.50', ds, pixels));
  // a label instance: one frame, ImageType …\LABEL
  const label: Item = [
    [0x00080008, 'CS', 'ORIGINAL\\PRIMARY\\LABEL\\NONE'], [0x00080016, 'UI', WSI_SOP_CLASS], [0x0020000e, 'UI', '1.2.826.0.1.3680043.8.498.1'],
    [0x00280002, 'US', [3]], [0x00280004, 'CS', 'YBR_FULL_422'], [0x00280010, 'US', [500]], [0x00280011, 'US', [500]], [0x00280100, 'US', [8]],
  ];
  writeFileSync(join(dir, 'label.dcm'), part10(WSI_SOP_CLASS, '1.2.840.10008.1.2.4.50', label, encapsulate([frames[4]!], false)));
  return dir;
}

for (const variant of [
  { sparse: true, table: true, split: 1, dropTile: 5 },
  { sparse: true, table: false, split: 3 },
  { sparse: false, table: true, split: 2 },
]) {
  test(`crafted ${variant.sparse ? 'TILED_SPARSE' : 'TILED_FULL'} instance, offset table ${variant.table ? 'present' : 'empty'}, ${variant.split} fragment(s) per frame, reads as the real level`, async () => {
    const dir = craftSeries(variant);
    const real = await openSlide(SERIES);
    const crafted = await openSlide(dir);
    try {
      assert.deepEqual(crafted.levels.map((l) => [l.width, l.height]), [[1110, 1483]]);
      assert.deepEqual(crafted.associatedImages, [{ name: 'label', width: 500, height: 500 }]);
      const a = await crafted.readRegion(0, 0, 0, 1110, 1483);
      const b = await real.readRegion(0, 0, 1, 1110, 1483);
      for (let t = 0; t < 9; t++) {
        const c = t % 3;
        const r = Math.floor(t / 3);
        const x = c * 500 + 10;
        const y = r * 500 + 10;
        const i = (y * 1110 + x) * 3;
        if (t === variant.dropTile) assert.deepEqual([...a.data.subarray(i, i + 3)], [255, 255, 255], 'a missing sparse tile is white');
        else assert.deepEqual(a.data.subarray(i, i + 300), b.data.subarray(i, i + 300), `tile ${t}`);
      }
      const label = await crafted.readAssociatedImage('label');
      assert.equal(label.width, 500);
    } finally {
      await real.close();
      await crafted.close();
      rmSync(dir, { recursive: true });
    }
  });
}

test('missing ImageType and PixelSpacing fall back and say so', async () => {
  const dir = craftSeries({ sparse: false, table: false, split: 1, imageType: '', spacing: false });
  const slide = await openSlide(dir);
  try {
    assert.equal(slide.mpp, null);
    assert.match(slide.warnings.join('\n'), /ImageType missing; taken as a pyramid level/);
    assert.match(slide.warnings.join('\n'), /microns per pixel unknown/);
  } finally { await slide.close(); rmSync(dir, { recursive: true }); }
});

test('a DICOM file of another SOP class is refused by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lamina-dicom-'));
  try {
    const buf = readFileSync(join(SERIES, 'level-9-frames-0-1.dcm'));
    // CT Image Storage, padded to the same 30-byte length so every offset stays valid
    const ct = Buffer.from('1.2.840.10008.5.1.4.1.1.2'.padEnd(30, '\0'), 'latin1');
    let at = 0;
    let patched = 0;
    while ((at = buf.indexOf(WSI_SOP_CLASS, at, 'latin1')) >= 0) { ct.copy(buf, at); patched++; }
    assert.equal(patched, 2); // (0002,0002) and (0008,0016)
    writeFileSync(join(dir, 'ct.dcm'), buf);
    await assert.rejects(openSlide(join(dir, 'ct.dcm')), (err: Error) => err instanceof UnsupportedSlideError &&
      /ct\.dcm: DICOM SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2 \(CT Image Storage\) is not VL Whole Slide Microscopy Image Storage/.test(err.message));
    await assert.rejects(openSlide(dir), UnsupportedSlideError);
  } finally { rmSync(dir, { recursive: true }); }
});

/** The 9 frames of the real level 1 decoded to RGB (by sharp), for re-encoding in other syntaxes. */
async function decodedFrames(): Promise<Buffer[]> {
  const sharp = (await import('sharp')).default;
  return Promise.all(realFrames(join(SERIES, 'level-1-frames-0-9.dcm')).map((f) => sharp(f).raw().toBuffer()));
}

function levelInstance(transferSyntax: string, photometric: string, pixelData: Buffer): Buffer {
  const ds: Item = [
    [0x00080008, 'CS', 'DERIVED\\PRIMARY\\VOLUME\\NONE'], [0x00080016, 'UI', WSI_SOP_CLASS], [0x0020000e, 'UI', '1.2.826.0.1.3680043.8.498.2'],
    [0x00280002, 'US', [3]], [0x00280004, 'CS', photometric], [0x00280006, 'US', [0]], [0x00280008, 'IS', '9'],
    [0x00280010, 'US', [500]], [0x00280011, 'US', [500]], [0x00280100, 'US', [8]], [0x00480006, 'UL', [1110]], [0x00480007, 'UL', [1483]],
    [0x00209311, 'CS', 'TILED_FULL'],
  ];
  return part10(WSI_SOP_CLASS, transferSyntax, ds, pixelData);
}

async function sameAsRealLevel1(file: Buffer, expectCompression: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lamina-dicom-'));
  writeFileSync(join(dir, 'level.dcm'), file);
  const real = await openSlide(SERIES);
  const crafted = await openSlide(dir);
  try {
    assert.equal(crafted.levels[0]!.compression, expectCompression);
    for (const [x, y, w, h] of [[0, 0, 1110, 1483], [480, 490, 64, 64]] as const) {
      const a = await crafted.readRegion(x, y, 0, w, h);
      const b = await real.readRegion(x * 2, y * 2, 1, w, h);
      assert.ok(a.data.equals(b.data), `region ${x},${y} ${w}×${h} differs`);
    }
  } finally {
    await real.close();
    await crafted.close();
    rmSync(dir, { recursive: true });
  }
}

test('JPEG 2000 frames (lossless, encoded here with OpenJPEG) decode through the codec registry', async () => {
  const { createRequire } = await import('node:module');
  const factory = createRequire(import.meta.url)('@cornerstonejs/codec-openjpeg/wasmjs') as (o: object) => Promise<{ J2KEncoder: new () => {
    getDecodedBuffer(info: object): Uint8Array; setQuality(lossless: boolean, q: number): void; encode(): void; getEncodedBuffer(): Uint8Array; }; }>;
  const openjpeg = await factory({ print() {}, printErr() {} });
  const j2k = (await decodedFrames()).map((rgb) => {
    const enc = new openjpeg.J2KEncoder();
    enc.getDecodedBuffer({ width: 500, height: 500, bitsPerSample: 8, componentCount: 3, isSigned: false }).set(rgb);
    enc.setQuality(true, 0);
    enc.encode();
    return Buffer.from(enc.getEncodedBuffer());
  });
  await sameAsRealLevel1(levelInstance('1.2.840.10008.1.2.4.90', 'YBR_RCT', encapsulate(j2k, true)), 'jp2k');
});

test('uncompressed (explicit VR little endian) frames read as stored', async () => {
  const { encode } = await import('./dicom-writer.ts');
  const native = encode([[0x7fe00010, 'OB', Buffer.concat(await decodedFrames())]]);
  await sameAsRealLevel1(levelInstance('1.2.840.10008.1.2.1', 'RGB', native), 'none');
});

test('a level split over two files (a concatenation) reads as one level', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lamina-dicom-'));
  const frames = realFrames(join(SERIES, 'level-1-frames-0-9.dcm'));
  const part = (first: number, count: number): Item => [
    [0x00080008, 'CS', 'DERIVED\\PRIMARY\\VOLUME\\NONE'], [0x00080016, 'UI', WSI_SOP_CLASS], [0x0020000e, 'UI', '1.2.826.0.1.3680043.8.498.3'],
    [0x00209161, 'UI', '1.2.826.0.1.3680043.8.498.4'], [0x00209228, 'UL', [first]],
    [0x00280002, 'US', [3]], [0x00280004, 'CS', 'YBR_FULL_422'], [0x00280008, 'IS', String(count)], [0x00280010, 'US', [500]], [0x00280011, 'US', [500]],
    [0x00280100, 'US', [8]], [0x00480006, 'UL', [1110]], [0x00480007, 'UL', [1483]], [0x00209311, 'CS', 'TILED_FULL'],
  ];
  // written second-part-first so that file order is not frame order
  writeFileSync(join(dir, 'a.dcm'), part10(WSI_SOP_CLASS, '1.2.840.10008.1.2.4.50', part(5, 4), encapsulate(frames.slice(5), false)));
  writeFileSync(join(dir, 'b.dcm'), part10(WSI_SOP_CLASS, '1.2.840.10008.1.2.4.50', part(0, 5), encapsulate(frames.slice(0, 5), false)));
  const real = await openSlide(SERIES);
  const crafted = await openSlide(dir);
  try {
    assert.deepEqual(crafted.levels.map((l) => [l.width, l.height]), [[1110, 1483]]);
    const a = await crafted.readRegion(0, 0, 0, 1110, 1483);
    const b = await real.readRegion(0, 0, 1, 1110, 1483);
    assert.ok(a.data.equals(b.data));
  } finally {
    await real.close();
    await crafted.close();
    rmSync(dir, { recursive: true });
  }
});
