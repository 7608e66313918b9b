import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { LaminaError } from '../../src/errors.ts';
import { MemorySource } from '../../src/io/byte-source.ts';
import { parseTiffDirectory } from '../../src/readers/tiff/tiff-directory.ts';
import { mulberry32 } from '../../src/util/prng.ts';

// A 4 MiB tile cache (this file runs in its own process) makes CMU's level 0 (19 MiB decoded)
// "larger than the cache", so its multi-tile reads take the libvips mosaic path and its fallback.
process.env.LAMINA_TILE_CACHE_MB = '4';
const { openSlideSource } = await import('../../src/readers/registry.ts');

// Mutated copies of the real TIFF-family slides (and of a small libvips BigTIFF), in memory. Every outcome must be a pixel buffer or a
// LaminaError — no TypeError/RangeError, no crash, no hang. Seeded: a failure names its seed.
const here = dirname(fileURLToPath(import.meta.url));
const slidesDir = join(here, '..', '..', '..', 'shared', 'slides');
const SLIDES = ['CMU-1-Small-Region.svs', 'tcga-cr-7395-01a-01-ts1.svs', 'boxes.tiff'];
const MUTANTS = Number(process.env.LAMINA_FUZZ_MUTANTS ?? 2000);
const SEED = Number(process.env.LAMINA_FUZZ_SEED ?? 20261129);
/** Per-mutant budget; a mutant that takes longer is reported as a hang. */
const HANG_MS = 5000;

interface Target { data: Buffer; structural: Array<[number, number]> }

/** Byte ranges worth mutating: the header, every IFD's entry table and its out-of-line values. */
async function structuralRanges(name: string, data: Buffer): Promise<Array<[number, number]>> {
  const dir = await parseTiffDirectory(new MemorySource(name, data));
  const ranges: Array<[number, number]> = [[0, 16]];
  for (const ifd of dir.ifds) {
    const big = dir.header.bigTiff;
    ranges.push([ifd.offset, (big ? 8 : 2) + ifd.entries.size * (big ? 20 : 12) + (big ? 8 : 4)]);
    for (const e of ifd.entries.values()) ranges.push([e.valueOffset, Math.min(64, data.length - e.valueOffset)]);
  }
  return ranges;
}

const INTERESTING = [0, 1, 7, 8, 0xff, 0xffff, 0x7fffffff, 0xffffffff, 1e9, 65536, 16];

function mutate(t: Target, rnd: () => number): Buffer {
  const kind = rnd();
  if (kind < 0.1) return t.data.subarray(0, Math.floor(rnd() * t.data.length)); // truncation
  const out = Buffer.from(t.data);
  const edits = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < edits; i++) {
    const [start, len] = kind < 0.8 ? t.structural[Math.floor(rnd() * t.structural.length)]! : [0, out.length];
    const pos = start + Math.floor(rnd() * Math.max(1, len));
    if (pos >= out.length - 4) continue;
    const op = rnd();
    if (op < 0.4) out[pos] = Math.floor(rnd() * 256);
    else if (op < 0.7) out[pos] ^= 1 << Math.floor(rnd() * 8);
    else out.writeUInt32LE(INTERESTING[Math.floor(rnd() * INTERESTING.length)]! >>> 0, pos);
  }
  return out;
}

async function exercise(name: string, data: Buffer, rnd: () => number): Promise<void> {
  const slide = await openSlideSource(new MemorySource(name, data));
  try {
    const level = Math.floor(rnd() * slide.levels.length);
    const l = slide.levels[level]!;
    const x = Math.floor(rnd() * slide.dimensions.width), y = Math.floor(rnd() * slide.dimensions.height);
    for (const [rx, ry] of [[0, 0], [x, y]] as const) {
      try {
        const img = await slide.readRegion(rx, ry, level, 96, 96);
        assert.equal(img.data.length, 96 * 96 * 3);
      } catch (err) {
        if (!(err instanceof LaminaError)) throw err;
      }
    }
    assert.ok(l.width >= 1);
    const small = slide.associatedImages.find((a) => a.width * a.height <= 600_000);
    if (small && rnd() < 0.2) await slide.readAssociatedImage(small.name).catch((err) => { if (!(err instanceof LaminaError)) throw err; });
  } finally {
    await slide.close();
  }
}

test(`fuzz: ${MUTANTS} mutated copies of the real slides give pixels or LaminaErrors, never crash or hang`, { timeout: 300_000 }, async (t) => {
  const present = SLIDES.filter((s) => existsSync(join(slidesDir, s)));
  if (!present.length) return t.skip('shared slides missing');
  const targets: Target[] = [];
  for (const s of present) {
    const data = readFileSync(join(slidesDir, s));
    targets.push({ data, structural: await structuralRanges(s, data) });
  }
  // no real BigTIFF is small enough to keep, so libvips writes one (JPEG pyramid) from the H&E tile
  const he = join(slidesDir, 'tcga-lung-rgb.png');
  if (existsSync(he)) {
    const data = await sharp(he).removeAlpha().tiff({ bigtiff: true, tile: true, tileWidth: 128, tileHeight: 128, pyramid: true, compression: 'jpeg' }).toBuffer();
    present.push('he-bigtiff.tiff');
    targets.push({ data, structural: await structuralRanges('he-bigtiff.tiff', data) });
  }
  const rnd = mulberry32(SEED);
  const outcomes = { opened: 0, rejected: 0 };
  const causes = new Set<string>();
  for (let i = 0; i < MUTANTS; i++) {
    const ti = i % targets.length;
    const mutant = mutate(targets[ti]!, rnd);
    const name = `${present[ti]}#${i}`;
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`mutant ${i} (seed ${SEED}) hung for ${HANG_MS} ms`)), HANG_MS); });
    try {
      await Promise.race([exercise(name, mutant, rnd), hang]);
      outcomes.opened++;
    } catch (err) {
      if (!(err instanceof LaminaError)) {
        assert.fail(`mutant ${i} of ${present[ti]} (seed ${SEED}) threw a non-Lamina error: ${(err as Error)?.stack ?? err}`);
      }
      // the edges wrap foreign errors; a wrapped TypeError would be our bug hiding behind a LaminaError
      const cause = (err as Error).cause;
      if (cause instanceof TypeError && !/Invalid byte order|Invalid magic/.test(cause.message)) {
        assert.fail(`mutant ${i} of ${present[ti]} (seed ${SEED}): ${(err as Error).message}\ncaused by ${cause.stack}`);
      }
      causes.add((err as Error).name + (cause ? `<${(cause as Error).constructor?.name}>` : ''));
      outcomes.rejected++;
    } finally {
      clearTimeout(timer);
    }
  }
  t.diagnostic(`seed ${SEED}: ${outcomes.opened} mutants opened and read, ${outcomes.rejected} rejected with LaminaErrors (${[...causes].sort().join(', ')})`);
  // the mutator must exercise both paths, or it is not testing the reader
  assert.ok(outcomes.opened > MUTANTS / 20 && outcomes.rejected > MUTANTS / 20, JSON.stringify(outcomes));
});
