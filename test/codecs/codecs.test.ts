import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { lzwDecode } from '../../src/codecs/lzw.ts';
import { completeJpegStream, hasColourMarker } from '../../src/codecs/jpeg.ts';
import { checkCodestreamSize, ycbcrToRgbInPlace } from '../../src/codecs/jp2k.ts';
import { compressionName, decodeBlock, getCodec, type BlockContext } from '../../src/codecs/registry.ts';

const ctx = (over: Partial<BlockContext>): BlockContext => ({
  name: 't.tiff: level 0 tile (0, 0)', width: 4, height: 2, compression: 1, photometric: 2, samplesPerPixel: 3,
  bitsPerSample: 8, planarConfiguration: 1, predictor: 1, sampleFormat: 1, jpegTables: null, ...over,
});

/** TIFF LZW encoder (MSB-first, early change) written plainly, to check the decoder on known input. */
function lzwEncode(input: Buffer): Buffer {
  const bits: number[] = [];
  const put = (code: number, width: number) => { for (let i = width - 1; i >= 0; i--) bits.push((code >> i) & 1); };
  let dict = new Map<string, number>();
  let next = 258, width = 9;
  const reset = () => { dict = new Map(); for (let i = 0; i < 256; i++) dict.set(String.fromCharCode(i), i); next = 258; width = 9; };
  reset();
  put(256, width);
  let w = '';
  for (const byte of input) {
    const c = String.fromCharCode(byte);
    if (dict.has(w + c)) { w += c; continue; }
    put(dict.get(w)!, width);
    dict.set(w + c, next++);
    // the encoder runs one table entry ahead of the decoder, so it widens one entry later (libtiff)
    if (next >= 1 << width && width < 12) width++;
    if (next >= 4094) { put(256, width); reset(); }
    w = c;
  }
  if (w) put(dict.get(w)!, width);
  put(257, width);
  const out = Buffer.alloc(Math.ceil(bits.length / 8));
  bits.forEach((b, i) => { if (b) out[i >> 3]! |= 0x80 >> (i & 7); });
  return out;
}

test('LZW: round trip of repetitive and random data, output bounded by the limit', () => {
  const data = Buffer.alloc(20000);
  let s = 7;
  for (let i = 0; i < data.length; i++) { s = (s * 1103515245 + 12345) >>> 0; data[i] = i < 10000 ? (i % 17) * 3 : s >>> 24; }
  const encoded = lzwEncode(data);
  assert.ok(lzwDecode(encoded, data.length).equals(data));
  assert.equal(lzwDecode(encoded, 100).length, 100);
  assert.throws(() => lzwDecode(Buffer.from([0x80, 0x7f, 0xff, 0xff]), 100), /first code after clear is 511/); // clear, then 511
  assert.throws(() => lzwDecode(Buffer.from([0x80, 0x20, 0xff, 0xff]), 100), /code 511 beyond dictionary size 258/); // clear, 'A', 511
});

test('none and deflate with horizontal predictor; grey and RGBA become RGB', async () => {
  const rgb = Buffer.from([10, 20, 30, 11, 22, 33, 12, 24, 36, 13, 26, 39, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
  const diffed = Buffer.from(rgb);
  for (let y = 0; y < 2; y++) for (let i = 12 * y + 11; i >= 12 * y + 3; i--) diffed[i] = (diffed[i]! - diffed[i - 3]! + 256) & 0xff;
  const out = await decodeBlock(deflateSync(diffed), ctx({ compression: 8, predictor: 2 }));
  assert.ok(out.data.equals(rgb));
  const grey = await decodeBlock(Buffer.from([0, 50, 100, 255, 1, 2, 3, 4]), ctx({ samplesPerPixel: 1, photometric: 1 }));
  assert.deepEqual([...grey.data.subarray(0, 6)], [0, 0, 0, 50, 50, 50]);
  const rgba = await decodeBlock(Buffer.from([200, 100, 0, 0, 200, 100, 0, 255, ...Array(24).fill(0)]), ctx({ samplesPerPixel: 4 }));
  assert.deepEqual([...rgba.data.subarray(0, 6)], [255, 255, 255, 200, 100, 0], 'transparent over white, opaque kept');
  await assert.rejects(decodeBlock(Buffer.alloc(48), ctx({ bitsPerSample: 16 })), { name: 'UnsupportedSlideError', message: /unsupported TIFF sample layout: 16 bits per sample/ });
  await assert.rejects(decodeBlock(Buffer.from('not zlib'), ctx({ compression: 8 })), { name: 'CorruptSlideError', message: /deflate data is corrupt/ });
});

test('JPEG: abbreviated tile + JPEGTables equals the full stream', async () => {
  const pixels = Buffer.alloc(16 * 16 * 3);
  for (let i = 0; i < pixels.length; i += 3) { pixels[i] = 230; pixels[i + 1] = 40; pixels[i + 2] = 90; }
  const full = await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
  const direct = await decodeBlock(full, ctx({ compression: 7, width: 16, height: 16, photometric: 6 }));
  assert.ok(Math.abs(direct.data[0]! - 230) <= 3 && Math.abs(direct.data[1]! - 40) <= 3);
  // split into "tables" (everything before SOF) and an abbreviated "tile" (SOI + the rest)
  const sof = full.indexOf(Buffer.from([0xff, 0xc0]));
  const tables = Buffer.concat([full.subarray(0, sof), Buffer.from([0xff, 0xd9])]);
  const tile = Buffer.concat([Buffer.from([0xff, 0xd8]), full.subarray(sof)]);
  assert.ok(completeJpegStream(tile, tables).equals(full));
  const viaTables = await decodeBlock(tile, ctx({ compression: 7, width: 16, height: 16, photometric: 6, jpegTables: tables }));
  assert.ok(viaTables.data.equals(direct.data));
  await assert.rejects(decodeBlock(Buffer.from([1, 2, 3, 4]), ctx({ compression: 7 })), { name: 'CorruptSlideError', message: /does not start with an SOI marker/ });
});

test('JPEG 2000: codestream size is checked before OpenJPEG allocates', () => {
  const siz = Buffer.alloc(48);
  siz.writeUInt16BE(0xff4f, 0); siz.writeUInt16BE(0xff51, 2);
  siz.writeUInt32BE(100000, 8); siz.writeUInt32BE(100000, 12); siz.writeUInt16BE(3, 40);
  assert.throws(() => checkCodestreamSize(siz, 'x'), { name: 'CorruptSlideError', message: 'x: JPEG 2000 codestream declares 100000 × 100000 pixels with 3 components (limit 16777216 pixels, 4 components)' });
  siz.writeUInt32BE(256, 8); siz.writeUInt32BE(256, 12);
  assert.doesNotThrow(() => checkCodestreamSize(siz, 'x'));
  assert.throws(() => checkCodestreamSize(Buffer.alloc(48), 'x'), /does not start with SOC and SIZ/);
});

test('registry: names ids, refuses unknown ones by name, loads each codec once', async () => {
  assert.equal(compressionName(33005), 'jp2k');
  assert.equal(compressionName(34712), 'JPEG 2000 (generic, Leica/OME)');
  assert.equal(compressionName(4242), 'compression 4242');
  assert.throws(() => getCodec(32773, 'p.tiff'), { name: 'UnsupportedSlideError', message: 'p.tiff: Unsupported TIFF compression: 32773 (PackBits)' });
  assert.equal(await getCodec(8), await getCodec(32946));
});

test('sharp-decoded codecs: grey JPEG is replicated, transparent WebP is flattened onto white', async () => {
  const grey = await sharp(Buffer.alloc(64, 77), { raw: { width: 8, height: 8, channels: 1 } }).jpeg({ quality: 100 }).toBuffer();
  const g = await decodeBlock(grey, ctx({ compression: 7, width: 8, height: 8, photometric: 1, samplesPerPixel: 1 }));
  assert.equal(g.data.length, 8 * 8 * 3);
  assert.ok(Math.abs(g.data[0]! - 77) <= 1 && g.data[0] === g.data[1] && g.data[1] === g.data[2]);
  const rgba = Buffer.alloc(8 * 8 * 4);
  for (let i = 0; i < 64; i++) rgba.set(i < 32 ? [10, 200, 10, 0] : [10, 200, 10, 255], i * 4);
  const webp = await sharp(rgba, { raw: { width: 8, height: 8, channels: 4 } }).webp({ lossless: true }).toBuffer();
  const w = await decodeBlock(webp, ctx({ compression: 50001, width: 8, height: 8 }));
  assert.deepEqual([...w.data.subarray(0, 3)], [255, 255, 255]);
  assert.deepEqual([...w.data.subarray(63 * 3, 64 * 3)], [10, 200, 10]);
});

test('JPEG 2000 33003: full-range YCbCr → RGB round-trips RGB within rounding', () => {
  const rgb = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [200, 120, 170]];
  const ycc = new Uint8Array(rgb.flatMap(([r, g, b]) => [
    0.299 * r! + 0.587 * g! + 0.114 * b!,
    128 - 0.168736 * r! - 0.331264 * g! + 0.5 * b!,
    128 + 0.5 * r! - 0.418688 * g! - 0.081312 * b!,
  ].map((v) => Math.max(0, Math.min(255, Math.round(v))))));
  ycbcrToRgbInPlace(ycc);
  rgb.flat().forEach((v, i) => assert.ok(Math.abs(ycc[i]! - v) <= 2, `sample ${i}: ${ycc[i]} vs ${v}`));
});
