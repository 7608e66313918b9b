/**
 * The tissue mask sums one mask row at a time and reads 8-MiB strips (memory that does not grow
 * with the slide). Its result must be bit for bit what the whole-grid version gave: that version
 * is kept below as the reference and compared on the real slides and on strip sizes that cut mask
 * rows in two.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { computeTissueMask, type TissueMask } from '../../src/tissue/tissue-mask.ts';
import { otsuThreshold } from '../../src/tissue/otsu.ts';
import { close, open, removeSmallComponents } from '../../src/tissue/morphology.ts';
import { openSlide } from '../../src/readers/registry.ts';
import type { Slide } from '../../src/readers/types.ts';
import { memorySlide, tissueColour, WHITE } from '../pipeline/memory-slide.ts';

const slides = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/slides');

/** The mask as computed before (commit 33f0007): six whole float32 grids, 24-MiB strips. */
async function wholeGridMask(slide: Slide, maxSide: number, stripBytes = 24 << 20): Promise<Omit<TissueMask, 'tissueFraction'> & { tissue: number }> {
  const [satLow, satHigh, minOd] = [0.04, 0.15, 0.04];
  const { width: w0, height: h0 } = slide.dimensions;
  const downsample = Math.max(1, Math.ceil(Math.max(w0, h0) / maxSide));
  const width = Math.max(1, Math.ceil(w0 / downsample));
  const height = Math.max(1, Math.ceil(h0 / downsample));
  let levelIndex = 0;
  slide.levels.forEach((level, i) => {
    if (level.downsample <= downsample * 1.001 && level.downsample >= slide.levels[levelIndex]!.downsample) levelIndex = i;
  });
  const level = slide.levels[levelIndex]!;
  const levelDs = w0 / level.width;
  const n = width * height;
  const [sumR, sumG, sumB, count] = [new Float32Array(n), new Float32Array(n), new Float32Array(n), new Float32Array(n)];
  const tileH = Math.max(1, level.tileHeight || 256);
  const stripRows = Math.max(1, Math.floor(stripBytes / (3 * level.width) / tileH)) * tileH;
  for (let y = 0; y < level.height; y += stripRows) {
    const rows = Math.min(stripRows, level.height - y);
    const image = await slide.readRegion(0, Math.round(y * levelDs), levelIndex, level.width, rows, { cache: false });
    for (let r = 0; r < rows; r++) {
      const maskRow = Math.min(height - 1, Math.floor(((y + r) * levelDs) / downsample)) * width;
      for (let x = 0, p = r * image.width * 3; x < image.width; x++, p += 3) {
        const m = maskRow + Math.min(width - 1, Math.floor((x * levelDs) / downsample));
        sumR[m]! += image.data[p]!; sumG[m]! += image.data[p + 1]!; sumB[m]! += image.data[p + 2]!; count[m]! += 1;
      }
    }
  }
  const od = (v: number) => -Math.log10((v + 1) / 256);
  const saturation = new Float32Array(n);
  const density = new Float32Array(n);
  const histogram = new Float64Array(256);
  for (let i = 0; i < n; i++) {
    const c = count[i]! || 1;
    const r = count[i] ? sumR[i]! / c : 255, g = count[i] ? sumG[i]! / c : 255, b = count[i] ? sumB[i]! / c : 255;
    const max = Math.max(r, g, b), min = Math.min(r, g, b);
    saturation[i] = max > 0 ? (max - min) / max : 0;
    density[i] = (od(r) + od(g) + od(b)) / 3;
    histogram[Math.min(255, Math.floor(saturation[i]! * 256))]! += 1;
  }
  const satThreshold = Math.min(satHigh, Math.max(satLow, otsuThreshold(histogram) / 256));
  let mask: Uint8Array = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = saturation[i]! >= satThreshold && density[i]! >= minOd ? 1 : 0;
  mask = removeSmallComponents(open(close(mask, width, height, 2), width, height, 1), width, height, Math.max(4, Math.round(n / 10_000)));
  return {
    width, height, downsample, data: mask, levelIndex, tissue: mask.reduce((a, b) => a + b, 0),
    thresholds: { saturation: Math.round(satThreshold * 1e6) / 1e6, opticalDensity: minOd },
  };
}

/**
 * `stripBytes` given: both read the same strips (the memory slide rounds a strip's level-0 origin,
 * so its pixels depend on where strips start); not given: this version's default against the old 24 MiB.
 */
async function assertSameMask(slide: Slide, maxSide: number, stripBytes?: number): Promise<void> {
  const want = await wholeGridMask(slide, maxSide, stripBytes);
  const got = await computeTissueMask(slide, { maxSide, stripBytes });
  const where = `${slide.name}, maxSide ${maxSide}, strip ${stripBytes ?? 'default'}`;
  assert.deepEqual([got.width, got.height, got.downsample, got.levelIndex], [want.width, want.height, want.downsample, want.levelIndex], where);
  assert.deepEqual(got.thresholds, want.thresholds, where);
  assert.ok(Buffer.from(got.data).equals(Buffer.from(want.data)), `${where}: masks differ`);
  assert.equal(got.tissueFraction, want.tissue / want.data.length, where);
}

test('real slides: the strip-wise mask is bit for bit the whole-grid mask', async () => {
  // tcga: two levels, level 1 at downsample 2.0005 (mask pixels of 1–2 level pixels, and at
  // maxSide 2222 a last mask row no level row reaches); CMU: one level, 6×6 level pixels a mask pixel.
  for (const [name, sides] of [['tcga-cr-7395-01a-01-ts1.svs', [2048, 2222, 512, 300]], ['CMU-1-Small-Region.svs', [2048, 512]]] as const) {
    const slide = await openSlide(join(slides, name));
    try {
      for (const maxSide of sides) {
        await assertSameMask(slide, maxSide);
        await assertSameMask(slide, maxSide, 1); // one tile row a strip: mask rows cut between strips
      }
    } finally {
      await slide.close();
    }
  }
});

test('a synthetic slide with a ragged edge: same mask for every strip size', async () => {
  const cx = 1500, cy = 1100, r = 700;
  const inside = (x: number, y: number) => (x - cx) ** 2 + (y - cy) ** 2 < r * r;
  const slide = memorySlide({ width: 3001, height: 2403, tileSize: 48, pixel: (x, y) => (inside(x, y) ? tissueColour(x, y) : WHITE) });
  for (const stripBytes of [1, 3 * 751 * 100, undefined]) await assertSameMask(slide, 300, stripBytes);
  await assertSameMask(slide, 333, 1); // 10 level-0 px a mask pixel over level-1 pixels of 4: rows of 2 or 3
});
