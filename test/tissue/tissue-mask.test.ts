import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { computeTissueMask, tissueFractionLookup } from '../../src/tissue/tissue-mask.ts';
import { otsuThreshold } from '../../src/tissue/otsu.ts';
import { close, closeThenOpenInPlace, dilate, erode, labelComponents, open, removeSmallComponents } from '../../src/tissue/morphology.ts';
import { openSlide } from '../../src/readers/registry.ts';
import { UnprocessableError } from '../../src/errors.ts';
import { memorySlide, tissueColour, WHITE } from '../pipeline/memory-slide.ts';

const slides = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/slides');

test('otsu splits a bimodal histogram between its modes', () => {
  const h = new Array(256).fill(0);
  for (let i = 10; i < 30; i++) h[i] = 100;
  for (let i = 150; i < 170; i++) h[i] = 50;
  const t = otsuThreshold(h);
  assert.ok(t > 29 && t <= 150, `threshold ${t}`);
  assert.equal(otsuThreshold(new Array(256).fill(0)), 256);
});

test('morphology: erode/dilate/close and 4-connected labels', () => {
  const w = 7, h = 5;
  const m = new Uint8Array(w * h);
  for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) m[y * w + x] = 1; // 3×3 block
  m[2 * w + 6] = 1; // a lone pixel
  assert.equal(erode(m, w, h, 1).reduce((a, b) => a + b, 0), 1); // only the block's centre
  assert.equal(dilate(m, w, h, 1)[0], 1);
  const { sizes } = labelComponents(m, w, h);
  assert.deepEqual(sizes.slice(1), [9, 1]);
  assert.equal(removeSmallComponents(m, w, h, 2)[2 * w + 6], 0);
  const gap = new Uint8Array(w * h);
  for (const x of [1, 2, 4, 5]) gap[2 * w + x] = 1;
  assert.equal(close(gap, w, h, 1)[2 * w + 3], 1, 'closing bridges a one-pixel gap');
});

test('closeThenOpenInPlace equals open(close(mask)) and reuses the mask', () => {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (const [w, h, density] of [[1, 1, 0.5], [7, 5, 0.3], [64, 41, 0.5], [131, 97, 0.8], [200, 3, 0.4]] as const) {
    const mask = Uint8Array.from({ length: w * h }, () => (random() < density ? 1 : 0));
    for (const [rc, ro] of [[2, 1], [1, 0], [0, 2], [3, 3]] as const) {
      const want = open(close(mask, w, h, rc), w, h, ro);
      const copy = mask.slice();
      const got = closeThenOpenInPlace(copy, w, h, rc, ro);
      assert.equal(got, copy, 'the same array');
      assert.deepEqual(got, want, `${w}×${h}, close ${rc}, open ${ro}`);
    }
  }
});

test('a pink disc on white glass gives a mask matching the disc', async () => {
  const cx = 1500, cy = 1100, r = 700;
  const inside = (x: number, y: number) => (x - cx) ** 2 + (y - cy) ** 2 < r * r;
  const slide = memorySlide({ width: 3000, height: 2400, pixel: (x, y) => (inside(x, y) ? tissueColour(x, y) : WHITE) });
  const mask = await computeTissueMask(slide, { maxSide: 300 });
  assert.equal(mask.downsample, 10);
  assert.equal(mask.levelIndex, 1, 'reads the coarsest level not coarser than the mask');
  let inter = 0, union = 0;
  for (let y = 0; y < mask.height; y++) {
    for (let x = 0; x < mask.width; x++) {
      const truth = inside((x + 0.5) * 10, (y + 0.5) * 10);
      const got = mask.data[y * mask.width + x] === 1;
      if (truth && got) inter++;
      if (truth || got) union++;
    }
  }
  assert.ok(inter / union > 0.97, `IoU ${inter / union}`);
  const fraction = tissueFractionLookup(mask);
  assert.equal(fraction(cx - 100, cy - 100, 200, 200), 1);
  assert.equal(fraction(0, 0, 200, 200), 0);
});

test('an all-white slide is refused with a clear error', async () => {
  const slide = memorySlide({ width: 1000, height: 800, pixel: () => WHITE, name: 'white.tiff' });
  await assert.rejects(computeTissueMask(slide), (err: unknown) => err instanceof UnprocessableError && /^white\.tiff: no tissue found/.test(err.message));
});

test('a slide that is all tissue is all tissue (Otsu threshold is clamped)', async () => {
  const slide = memorySlide({ width: 1200, height: 1200, pixel: tissueColour });
  const mask = await computeTissueMask(slide, { maxSide: 200 });
  assert.ok(mask.tissueFraction > 0.99, `fraction ${mask.tissueFraction}`);
});

test('real H&E (CMU-1-Small-Region.svs): tissue covers the stained region only', async () => {
  const slide = await openSlide(join(slides, 'CMU-1-Small-Region.svs'));
  try {
    const mask = await computeTissueMask(slide, { maxSide: 512 });
    // The section fills roughly the right half of the region; glass elsewhere (checked by eye once).
    assert.ok(mask.tissueFraction > 0.25 && mask.tissueFraction < 0.5, `fraction ${mask.tissueFraction}`);
    const fraction = tissueFractionLookup(mask);
    assert.equal(fraction(50, 2400, 200, 200), 0, 'glass at the lower left');
    assert.ok(fraction(1300, 2400, 200, 200) > 0.9, 'tissue at the lower middle');
  } finally {
    await slide.close();
  }
});
