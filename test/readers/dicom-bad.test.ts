import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemorySource } from '../../src/io/byte-source.ts';
import { CorruptSlideError, LaminaError, UnsupportedSlideError } from '../../src/errors.ts';
import { openSlideSource } from '../../src/readers/registry.ts';
import { WSI_SOP_CLASS } from '../../src/readers/dicom/dicom-header.ts';
import { slidesDir } from './dicom-test-utils.ts';
import { mulberry32 } from '../../src/util/prng.ts';
import { encapsulate, part10, realFrames, type Item } from './dicom-writer.ts';

const SERIES = join(slidesDir, 'CMU-1-Small-Region-dicom');
const level1 = readFileSync(join(SERIES, 'level-1-frames-0-9.dcm'));
const open = (name: string, buf: Buffer) => openSlideSource(new MemorySource(name, buf));

test('truncated DICOM: a cut header and cut frames get typed errors', async () => {
  await assert.rejects(open('head.dcm', level1.subarray(0, 1000)), (e: Error) => e instanceof CorruptSlideError && /head\.dcm: DICOM data set has no Pixel Data within 1000 bytes/.test(e.message));
  const slide = await open('half.dcm', level1.subarray(0, level1.length >> 1));
  await assert.rejects(slide.readRegion(0, 0, 0, 100, 100), (e: Error) => e instanceof CorruptSlideError && /half\.dcm: fragment of \d+ bytes at \d+ runs past the end of the file/.test(e.message));
  await slide.close();
});

const frames = realFrames(join(SERIES, 'level-1-frames-0-9.dcm'));
function instance(ds: Item, pixels: Buffer): Buffer {
  const base: Item = [
    [0x00080008, 'CS', 'DERIVED\\PRIMARY\\VOLUME\\NONE'], [0x00080016, 'UI', WSI_SOP_CLASS], [0x0020000e, 'UI', '1.2.3'],
    [0x00280002, 'US', [3]], [0x00280004, 'CS', 'RGB'], [0x00280008, 'IS', '9'], [0x00280010, 'US', [500]], [0x00280011, 'US', [500]],
    [0x00280100, 'US', [8]], [0x00480006, 'UL', [1110]], [0x00480007, 'UL', [1483]], [0x00209311, 'CS', 'TILED_FULL'],
  ];
  const tags = new Set(ds.map((e) => e[0]));
  return part10(WSI_SOP_CLASS, '1.2.840.10008.1.2.4.50', [...base.filter((e) => !tags.has(e[0])), ...ds.filter((e) => e[2] !== '')], pixels);
}

test('a Basic Offset Table that points between fragments is refused', async () => {
  const pixels = encapsulate(frames, true);
  // entry 3 of the table: move it 2 bytes into a fragment
  const tableAt = pixels.indexOf(Buffer.from([0xfe, 0xff, 0x00, 0xe0])) + 8;
  pixels.writeUInt32LE(pixels.readUInt32LE(tableAt + 12) + 2, tableAt + 12);
  const slide = await open('bot.dcm', instance([], pixels));
  await assert.rejects(slide.readRegion(0, 0, 0, 10, 10), /bot\.dcm: Basic Offset Table entry 3 \(\d+\) is not a fragment start/);
  await slide.close();
});

test('missing or impossible attributes are named', async () => {
  await assert.rejects(open('norows.dcm', instance([[0x00280010, 'US', '']], encapsulate(frames, false))), /norows\.dcm: Rows \(0028,0010\) is missing/);
  await assert.rejects(open('few.dcm', instance([[0x00280008, 'IS', '4']], encapsulate(frames.slice(0, 4), false))), /few\.dcm: 4 frames for a 3 × 3 tile grid/);
  await assert.rejects(open('j2k.dcm', part10(WSI_SOP_CLASS, '1.2.840.10008.1.2.4.80', [[0x00080016, 'UI', WSI_SOP_CLASS], [0x00280010, 'US', [8]], [0x00280011, 'US', [8]]], encapsulate([frames[0]!], false))),
    (e: Error) => e instanceof UnsupportedSlideError && /unsupported DICOM transfer syntax 1\.2\.840\.10008\.1\.2\.4\.80 \(JPEG-LS lossless\)/.test(e.message));
  const wrongCount = await open('count.dcm', instance([[0x00280008, 'IS', '10']], encapsulate(frames, false, 2)));
  await assert.rejects(wrongCount.readRegion(0, 0, 0, 10, 10), /count\.dcm: found 9 frames in 18 fragments, NumberOfFrames says 10/);
  await wrongCount.close();
});

test('fuzz: 1,500 seeded mutations of a DICOM instance: typed errors or pixels, no crash, no hang', { timeout: 120_000 }, async () => {
  const seed = 4242;
  const rand = mulberry32(seed);
  const original = readFileSync(join(SERIES, 'level-2-frames-0-4.dcm'));
  const buf = Buffer.from(original);
  const pixelAt = original.indexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00]));
  // the data set before Pixel Data, and the item headers and JPEG headers of the fragments
  const areas: Array<[number, number]> = [[128, pixelAt + 40 - 128]];
  for (let at = original.indexOf(Buffer.from([0xfe, 0xff, 0x00, 0xe0]), pixelAt); at >= 0; at = original.indexOf(Buffer.from([0xfe, 0xff, 0x00, 0xe0]), at + 8)) {
    areas.push([at, 8 + 700]);
    if (areas.length > 12) break;
  }
  const outcomes = { ok: 0, typed: 0 };
  for (let iter = 0; iter < 1500; iter++) {
    const touched: number[] = [];
    for (let k = 1 + Math.floor(rand() * 4); k > 0; k--) {
      const [start, len] = rand() < 0.9 ? areas[Math.floor(rand() * areas.length)]! : [0, buf.length];
      const at = Math.min(buf.length - 1, start + Math.floor(rand() * len));
      touched.push(at);
      buf[at] = rand() < 0.5 ? Math.floor(rand() * 256) : buf[at]! ^ (1 << Math.floor(rand() * 8));
    }
    try {
      const slide = await openSlideSource(new MemorySource(`fuzz-${seed}-${iter}.dcm`, buf));
      const w = Math.min(300, slide.levels[0]!.width);
      const h = Math.min(300, slide.levels[0]!.height);
      await slide.readRegion(Math.floor(rand() * 400), Math.floor(rand() * 600), 0, w, h);
      await slide.close();
      outcomes.ok++;
    } catch (err) {
      if (!(err instanceof LaminaError)) assert.fail(`iteration ${iter} (seed ${seed}): untyped ${(err as Error)?.stack ?? err}`);
      outcomes.typed++;
    }
    for (const at of touched) buf[at] = original[at]!;
  }
  assert.ok(outcomes.ok > 100 && outcomes.typed > 100, JSON.stringify(outcomes));
});
