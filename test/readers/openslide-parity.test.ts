import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { openSlide } from '../../src/readers/registry.ts';

// Reference pixels made by tools/make-openslide-fixtures.py with OpenSlide 3.4.1 (python3-openslide).
const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', 'fixtures', 'openslide');
const slidesDir = join(here, '..', '..', '..', 'shared', 'slides');
const manifest = JSON.parse(readFileSync(join(fixtures, 'manifest.json'), 'utf8')) as {
  slides: Record<string, {
    vendor: string; levels: number[][]; downsamples: number[]; mpp: (number | null)[]; objectivePower: number | null;
    associated: Record<string, { width: number; height: number; crop: number[] }>;
    regions: Array<{ name: string; x: number; y: number; level: number; width: number; height: number }>;
  }>;
};

/** Tolerance from the issue: JPEG/J2K decoders and OpenSlide's sub-pixel placement differ by a little. */
const MAX_MEAN_ABS_DIFF = 2;

async function loadPng(path: string): Promise<{ width: number; height: number; data: Buffer }> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

function meanAbsDiffPerChannel(a: Buffer, b: Buffer): number[] {
  const sums = [0, 0, 0];
  for (let i = 0; i < a.length; i++) sums[i % 3]! += Math.abs(a[i]! - b[i]!);
  return sums.map((s) => s / (a.length / 3));
}

for (const [slideName, expected] of Object.entries(manifest.slides)) {
  const slidePath = join(slidesDir, slideName);
  test(`${slideName}: metadata matches OpenSlide`, { skip: !existsSync(slidePath) && 'shared slide missing' }, async () => {
    const slide = await openSlide(slidePath);
    try {
      assert.equal(slide.vendor, expected.vendor);
      assert.deepEqual(slide.levels.map((l) => [l.width, l.height]), expected.levels);
      slide.levels.forEach((l, i) => assert.ok(Math.abs(l.downsample - expected.downsamples[i]!) < 1e-9, `downsample of level ${i}`));
      assert.deepEqual(slide.mpp ? [slide.mpp.x, slide.mpp.y] : [null, null], expected.mpp);
      assert.equal(slide.objectivePower, expected.objectivePower);
      assert.deepEqual(slide.associatedImages.map((a) => a.name).sort(), Object.keys(expected.associated).sort());
      for (const a of slide.associatedImages) {
        assert.deepEqual([a.width, a.height], [expected.associated[a.name]!.width, expected.associated[a.name]!.height]);
      }
    } finally {
      await slide.close();
    }
  });

  test(`${slideName}: regions match OpenSlide within ${MAX_MEAN_ABS_DIFF} grey levels`, { skip: !existsSync(slidePath) && 'shared slide missing' }, async () => {
    const slide = await openSlide(slidePath);
    try {
      for (const r of expected.regions) {
        const ref = await loadPng(join(fixtures, slideName, `${r.name}.png`));
        const got = await slide.readRegion(r.x, r.y, r.level, r.width, r.height);
        assert.deepEqual([got.width, got.height], [ref.width, ref.height], r.name);
        const mad = meanAbsDiffPerChannel(got.data, ref.data);
        assert.ok(mad.every((d) => d <= MAX_MEAN_ABS_DIFF), `${slideName} ${r.name}: mean abs diff per channel ${mad.map((d) => d.toFixed(3)).join(', ')}`);
      }
      for (const [name, a] of Object.entries(expected.associated)) {
        const ref = await loadPng(join(fixtures, slideName, `associated-${name}.png`));
        const img = await slide.readAssociatedImage(name);
        const [cx, cy, cw, ch] = a.crop as [number, number, number, number];
        const crop = Buffer.alloc(cw * ch * 3);
        for (let y = 0; y < ch; y++) img.data.copy(crop, y * cw * 3, ((cy + y) * img.width + cx) * 3, ((cy + y) * img.width + cx + cw) * 3);
        const mad = meanAbsDiffPerChannel(crop, ref.data);
        assert.ok(mad.every((d) => d <= MAX_MEAN_ABS_DIFF), `${slideName} associated ${name}: mean abs diff ${mad.map((d) => d.toFixed(3)).join(', ')}`);
      }
    } finally {
      await slide.close();
    }
  });
}
