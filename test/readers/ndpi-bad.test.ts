import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemorySource, type ByteSource } from '../../src/io/byte-source.ts';
import { TileCache } from '../../src/io/tile-cache.ts';
import { CorruptSlideError, LaminaError } from '../../src/errors.ts';
import { openNdpi } from '../../src/readers/ndpi/ndpi.ts';
import { openSlideSource } from '../../src/readers/registry.ts';
import { fixturesDir, meanAbsDiff, slidesDir } from './dicom-test-utils.ts';
import { mulberry32 } from '../../src/util/prng.ts';

const original = readFileSync(join(slidesDir, 'test3-DAPI-2-387.ndpi'));
const IFD0 = 2067399; // directory of level 0 (48 entries)
const open = (buf: Buffer) => openNdpi(new MemorySource('bad.ndpi', buf), new TileCache(8 << 20));

/** Byte position of an IFD entry's tag field. */
function entryAt(buf: Buffer, ifd: number, tag: number): number {
  const n = buf.readUInt16LE(ifd);
  for (let i = 0; i < n; i++) if (buf.readUInt16LE(ifd + 2 + 12 * i) === tag) return ifd + 2 + 12 * i;
  throw new Error(`tag ${tag} not found`);
}

test('truncated NDPI: the directory past the end is named', async () => {
  await assert.rejects(open(original.subarray(0, 1 << 20)), (e: Error) => e instanceof CorruptSlideError &&
    /bad\.ndpi: directory 0 offset 2067399 points outside the file \(1048576 bytes\)/.test(e.message));
  // through the registry too: a typed error, not a crash
  await assert.rejects(openSlideSource(new MemorySource('cut.ndpi', original.subarray(0, 3_000_000))), LaminaError);
});

test('a strip offset past the end of the file is refused at open', async () => {
  const buf = Buffer.from(original);
  buf.writeUInt32LE(3_500_000, entryAt(buf, IFD0, 273) + 8);
  await assert.rejects(open(buf), /directory 0: JPEG strip 3500000\+2060686 lies outside the file/);
});

test('a missing required tag is named', async () => {
  const buf = Buffer.from(original);
  buf.writeUInt16LE(255, entryAt(buf, IFD0, 256)); // ImageWidth → an unknown tag
  await assert.rejects(open(buf), /directory 0 lacks required tag 256/);
});

test('a wrong McuStarts offset is caught before decoding, and the error is sticky', async () => {
  const buf = Buffer.from(original);
  const table = buf.readUInt32LE(entryAt(buf, IFD0, 65426) + 8);
  buf.writeUInt32LE(buf.readUInt32LE(table + 4 * 100) + 7, table + 4 * 100); // interval 100 starts 7 bytes late
  const slide = await open(buf);
  const first = await slide.readRegion(0, 100 * 8, 0, 64, 64).catch((e: unknown) => e);
  assert.ok(first instanceof CorruptSlideError && /restart marker RST3 expected before interval 100 was not found/.test(first.message), String(first));
  // sticky: a region that would be fine now rethrows the same error
  await assert.rejects(slide.readRegion(0, 0, 0, 16, 16), (e) => e === first);
  await slide.close();
});

test('without McuStarts the restart markers are found by scanning, pixels unchanged', async () => {
  const buf = Buffer.from(original);
  buf.writeUInt16LE(65000, entryAt(buf, IFD0, 65426));
  const slide = await open(buf);
  try {
    assert.match(slide.warnings.join('\n'), /directory 0: no McuStarts tag \(65426\); restart markers found by scanning/);
    const img = await slide.readRegion(1000, 2000, 0, 256, 256);
    const mad = await meanAbsDiff(img, join(fixturesDir, 'ndpi', 'L0-x1000-y2000-256x256.png'));
    assert.ok(mad.every((d) => d <= 2), String(mad));
  } finally { await slide.close(); }
});

/**
 * The same slide moved up by exactly 4 GiB in a sparse virtual file: every offset keeps its low
 * 32 bits and needs high word 1 from NDPI's value extensions (and the 8-byte IFD pointers).
 */
for (const stripHigh of ['value extension', 'tag 65324'] as const) test(`offsets above 4 GiB are taken from the NDPI value extensions (strip offset high word in the ${stripHigh})`, async () => {
  const G4 = 2 ** 32;
  const body = Buffer.from(original);
  let ifd = original.readUInt32LE(4);
  while (ifd !== 0) {
    const n = body.readUInt16LE(ifd);
    const ext = ifd + 2 + 12 * n + 8;
    for (let i = 0; i < n; i++) {
      const at = ifd + 2 + 12 * i;
      const type = body.readUInt16LE(at + 2);
      const bytes = ({ 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 11: 4 } as Record<number, number>)[type]! * body.readUInt32LE(at + 4);
      const isOffset = bytes > 4 || body.readUInt16LE(at) === 273;
      body.writeUInt32LE(isOffset ? 1 : 0, ext + 4 * i);
    }
    if (stripHigh === 'tag 65324' && ifd === IFD0) {
      // move level 0's strip high word into tag 65324 (reusing the slot of the inline tag 65433)
      const slot = entryAt(body, ifd, 65433);
      body.writeUInt16LE(65324, slot);
      body.writeUInt32LE(1, slot + 8);
      body.writeUInt32LE(0, ext + 4 * ((entryAt(body, ifd, 273) - ifd - 2) / 12));
    }
    const next = body.readUInt32LE(ifd + 2 + 12 * n);
    if (next !== 0) body.writeUInt32LE(1, ifd + 2 + 12 * n + 4);
    ifd = next;
  }
  const head = Buffer.alloc(12);
  original.copy(head, 0, 0, 4);
  head.writeUInt32LE(original.readUInt32LE(4), 4);
  head.writeUInt32LE(1, 8);
  const source: ByteSource = {
    name: 'big.ndpi', size: G4 + body.length,
    async read(offset, length) {
      if (offset + length > this.size) throw new CorruptSlideError('past end');
      const out = Buffer.alloc(length);
      if (offset >= G4) body.copy(out, 0, offset - G4, offset - G4 + length);
      else if (offset < head.length) head.copy(out, 0, offset, Math.min(head.length, offset + length));
      return out;
    },
    async close() {},
  };
  const slide = await openNdpi(source, new TileCache(8 << 20));
  try {
    assert.equal(slide.levels.length, 7);
    const mad = await meanAbsDiff(await slide.readRegion(1000, 2000, 0, 256, 256), join(fixturesDir, 'ndpi', 'L0-x1000-y2000-256x256.png'));
    assert.ok(mad.every((d) => d <= 2), String(mad));
    assert.equal((await slide.readAssociatedImage('macro')).width, 1188);
  } finally { await slide.close(); }
});

test('fuzz: 2,000 seeded mutations of the NDPI structure: typed errors or pixels, no crash, no hang', { timeout: 120_000 }, async () => {
  const seed = 20261129;
  const rand = mulberry32(seed);
  const buf = Buffer.from(original);
  // structural areas: TIFF header, every IFD, level JPEG headers, the McuStarts tables
  const areas: Array<[number, number]> = [[0, 16]];
  let ifd = original.readUInt32LE(4);
  while (ifd !== 0) {
    const n = original.readUInt16LE(ifd);
    areas.push([ifd, 2 + 12 * n + 8]);
    const strip = original.readUInt32LE(entryAt(original, ifd, 273) + 8);
    areas.push([strip, 700]);
    try { const t = entryAt(original, ifd, 65426); areas.push([original.readUInt32LE(t + 8), 4 * original.readUInt32LE(t + 4)]); } catch { /* macro, map */ }
    ifd = original.readUInt32LE(ifd + 2 + 12 * n);
  }
  const cache = new TileCache(4 << 20);
  const outcomes = { ok: 0, typed: 0 };
  for (let iter = 0; iter < 2000; iter++) {
    const touched: number[] = [];
    const count = 1 + Math.floor(rand() * 4);
    for (let k = 0; k < count; k++) {
      const [start, len] = rand() < 0.9 ? areas[Math.floor(rand() * areas.length)]! : [0, buf.length];
      const at = start + Math.floor(rand() * len);
      touched.push(at);
      buf[at] = rand() < 0.5 ? Math.floor(rand() * 256) : buf[at]! ^ (1 << Math.floor(rand() * 8));
    }
    try {
      const slide = await openNdpi(new MemorySource(`fuzz-${seed}-${iter}.ndpi`, buf), cache);
      const last = slide.levels.length - 1;
      await slide.readRegion(Math.floor(rand() * 3968), Math.floor(rand() * 4864), 0, 32, 32);
      await slide.readRegion(0, 0, last, Math.min(64, slide.levels[last]!.width), Math.min(64, slide.levels[last]!.height));
      await slide.readRegion(Math.floor(rand() * 3968), Math.floor(rand() * 4864), Math.min(3, last), 48, 48);
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
