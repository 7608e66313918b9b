import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { MemorySource } from '../../src/io/byte-source.ts';
import { openSlide, openSlideSource } from '../../src/readers/registry.ts';
import { buildTiff, cutTiles, tiledRgbTags } from './helpers/tiny-tiff.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const slides = join(repo, '..', 'shared', 'slides');
const cmu = join(slides, 'CMU-1-Small-Region.svs');

/** A valid 128 × 128 uncompressed tiled TIFF: 4 tiles of 64 × 64. */
function smallTiff(overrides: { width?: number; height?: number; compression?: number; tiles?: Buffer[] } = {}): Buffer {
  const rgb = Buffer.alloc(128 * 128 * 3, 90);
  return buildTiff([{
    tags: tiledRgbTags(overrides.width ?? 128, overrides.height ?? 128, 64, overrides.compression ?? 1),
    blocks: overrides.tiles ?? cutTiles(rgb, 128, 128, 64),
  }]);
}

/** Opens from memory; a hostile header must fail (or be read) without growing the heap by more than `maxGrowthMb`. */
async function expectBoundedFailure(buf: Buffer, name: string, error: { name: string; message: RegExp }, maxGrowthMb = 64) {
  const before = process.memoryUsage();
  await assert.rejects(openSlideSource(new MemorySource(name, buf)), error);
  const after = process.memoryUsage();
  const grown = (after.arrayBuffers - before.arrayBuffers + after.heapUsed - before.heapUsed) / 2 ** 20;
  assert.ok(grown < maxGrowthMb, `heap grew by ${grown.toFixed(1)} MiB`);
}

test('empty file: UnsupportedSlideError naming it', async () => {
  await expectBoundedFailure(Buffer.alloc(0), 'empty.svs', { name: 'UnsupportedSlideError', message: /^empty\.svs: empty file \(0 bytes\)$/ });
});

test('a non-TIFF file: every format says why it refused', async () => {
  await expectBoundedFailure(Buffer.from('this is a text file, not a slide\n'.repeat(10)), 'notes.txt', {
    name: 'UnsupportedSlideError',
    message: /^notes\.txt: not a supported slide format \(aperio: not a TIFF file; .*generic-tiff: not a TIFF file\)$/,
  });
});

test('a truncated slide: CorruptSlideError that says so', { skip: !existsSync(cmu) && 'shared slide missing' }, async () => {
  const buf = readFileSync(cmu);
  await expectBoundedFailure(buf.subarray(0, buf.length >> 1), 'cut.svs', { name: 'CorruptSlideError', message: /^cut\.svs: IFD offset \d+ lies outside the file \(969477 bytes\); is the file truncated\?$/ });
});

test('tile offsets past the end of the file: CorruptSlideError at read, and the error is sticky', async () => {
  const buf = smallTiff();
  // point the last tile's offset far past the end: find the TileOffsets array by its first value
  const slide = await openSlideSource(new MemorySource('short.tiff', buf));
  const good = await slide.readRegion(0, 0, 0, 64, 64);
  assert.equal(good.data[0], 90);
  const bad = Buffer.from(buf);
  const needle = Buffer.alloc(4); needle.writeUInt32LE(8 + 3 * 64 * 64 * 3); // offset of tile 3
  const at = bad.indexOf(needle, 8 + 4 * 64 * 64 * 3);
  assert.ok(at > 0);
  bad.writeUInt32LE(10_000_000, at);
  const broken = await openSlideSource(new MemorySource('short.tiff', bad));
  assert.equal((await broken.readRegion(0, 0, 0, 64, 64)).data[0], 90, 'tiles before the broken one read');
  const expected = { name: 'CorruptSlideError', message: /^short\.tiff: IFD 0: block 3 at offset 10000000 \(\+12288 bytes\) points past the end of the file \(\d+ bytes\)$/ };
  await assert.rejects(broken.readRegion(64, 64, 0, 64, 64), expected);
  // sticky: a read that would have succeeded now fails with the same error (OpenSlide's error state)
  await assert.rejects(broken.readRegion(0, 0, 0, 64, 64), expected);
  await broken.close();
  await slide.close();
});

test('a header claiming 10⁹ × 10⁹ pixels: rejected at open, no allocation from it', async () => {
  await expectBoundedFailure(smallTiff({ width: 1e9, height: 1e9 }), 'huge.tiff', {
    name: 'CorruptSlideError',
    message: /^huge\.tiff: IFD 0: 4 tile\/strip entries for an image that needs 244140625000000$/,
  });
});

test('an entry whose value array would run past the file: rejected before geotiff allocates it', async () => {
  const buf = smallTiff();
  // TileByteCounts (tag 325, LONG): set its count to 2³¹
  const entry = Buffer.from([0x45, 0x01, 0x04, 0x00]);
  const at = buf.indexOf(entry, buf.readUInt32LE(4));
  assert.ok(at > 0);
  buf.writeUInt32LE(2 ** 31, at + 4);
  await expectBoundedFailure(buf, 'count.tiff', { name: 'CorruptSlideError', message: /^count\.tiff: IFD at \d+: tag 325 claims 2147483648 values at offset \d+, past the end of the file/ });
});

test('a TIFF header whose first IFD offset is 0: CorruptSlideError (found by the fuzz test)', async () => {
  const buf = smallTiff();
  buf.writeUInt32LE(0, 4);
  await expectBoundedFailure(buf, 'noifd.tiff', { name: 'CorruptSlideError', message: /^noifd\.tiff: TIFF has no image directory \(first IFD offset is 0\)$/ });
});

test('an IFD chain that loops: CorruptSlideError', async () => {
  const buf = smallTiff();
  const ifd = buf.readUInt32LE(4);
  const n = buf.readUInt16LE(ifd);
  buf.writeUInt32LE(ifd, ifd + 2 + n * 12); // next IFD → itself
  await expectBoundedFailure(buf, 'loop.tiff', { name: 'CorruptSlideError', message: /^loop\.tiff: IFD chain loops back to offset \d+$/ });
});

test('an unsupported compression is reported by name', async () => {
  await expectBoundedFailure(smallTiff({ compression: 34712 }), 'leica.tiff', {
    name: 'UnsupportedSlideError', message: /^leica\.tiff: level 0: Unsupported TIFF compression: 34712 \(JPEG 2000 \(generic, Leica\/OME\)\)$/,
  });
  await expectBoundedFailure(smallTiff({ compression: 200 }), 'odd.tiff', {
    name: 'UnsupportedSlideError', message: /^odd\.tiff: level 0: Unsupported TIFF compression: 200$/,
  });
});

test('region requests with negative, fractional or huge sizes: InvalidParameterError, nothing allocated', async () => {
  const slide = await openSlideSource(new MemorySource('ok.tiff', smallTiff()));
  try {
    await assert.rejects(slide.readRegion(0, 0, 0, -5, 10), { name: 'InvalidParameterError', message: 'Expected integer between 1 and 65536 for width but received -5 of type number' });
    await assert.rejects(slide.readRegion(0, 0, 0, 10, 0), { name: 'InvalidParameterError', message: /for height but received 0/ });
    await assert.rejects(slide.readRegion(0, 0, 0, 1.5, 10), { name: 'InvalidParameterError', message: /for width but received 1.5/ });
    await assert.rejects(slide.readRegion(Number.NaN, 0, 0, 10, 10), { name: 'InvalidParameterError', message: /for level0X but received NaN/ });
    await assert.rejects(slide.readRegion(0, 0, 1, 10, 10), { name: 'InvalidParameterError', message: /Expected integer between 0 and 0 for level but received 1/ });
    await assert.rejects(slide.readRegion(0, 0, 0, 65536, 65536), { name: 'InvalidParameterError', message: /^Region 65536 × 65536 is too large/ });
    await assert.rejects(slide.readRegion(0, 0, 0, 1e9, 1e9), { name: 'InvalidParameterError', message: /for width but received 1000000000/ });
    await assert.rejects(slide.readRegion(0, 0, 0, 64, 64, { signal: AbortSignal.abort() }), { name: 'CancelledError' });
    // parameter errors and cancellations are not sticky
    assert.equal((await slide.readRegion(-10, -10, 0, 20, 20)).data.length, 1200);
  } finally {
    await slide.close();
  }
});

test('a missing path is a plain ENOENT; a closed slide refuses reads', async () => {
  await assert.rejects(openSlide(join(repo, 'no-such-slide.svs')), { code: 'ENOENT' });
  const slide = await openSlideSource(new MemorySource('ok.tiff', smallTiff()));
  await slide.close();
  await slide.close();
  await assert.rejects(slide.readRegion(0, 0, 0, 1, 1), { message: 'ok.tiff: slide is closed' });
});

test('CLI: bad inputs exit non-zero with one clear line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lamina-bad-'));
  try {
    writeFileSync(join(dir, 'empty.svs'), '');
    writeFileSync(join(dir, 'huge.tiff'), smallTiff({ width: 1e9, height: 1e9 }));
    writeFileSync(join(dir, 'ok.tiff'), smallTiff());
    const run = (args: string[]) => spawnSync(process.execPath, [join(repo, 'bin', 'lamina.js'), ...args], { encoding: 'utf8' });
    let r = run(['info', join(dir, 'empty.svs')]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'lamina: empty.svs: empty file (0 bytes)\n');
    r = run(['info', join(dir, 'huge.tiff')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^lamina: huge\.tiff: IFD 0: 4 tile\/strip entries for an image that needs 244140625000000\n$/);
    r = run(['region', join(dir, 'ok.tiff'), '--width=-5', '--height', '10', '--out', join(dir, 'x.png')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /Expected integer between 1 and 65536 for --width but received "-5"/);
    r = run(['region', join(dir, 'ok.tiff'), '--level', '3', '--width', '5', '--height', '5', '--out', join(dir, 'x.png')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /for --level but received "3"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
