// A batch's tiles read `parts` read units at a time are, in order, the same pixels as reading each
// tile on its own: a real slide (JPEG tiles of 240 px, analysis tiles of 224), a real plan, several
// concurrency levels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { readAhead, readRange } from '../../src/pipeline/batch.ts';
import { planAnalysis } from '../../src/pipeline/plan.ts';
import { quietContext } from '../../src/pipeline/stage.ts';
import { openSlide } from '../../src/readers/registry.ts';
import { readUnits } from '../../src/tiling/tile-reader.ts';

const SAMPLE = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/slides/CMU-1-Small-Region.svs');

test('readRange with 1–5 units in flight equals per-tile reads', async () => {
  const slide = await openSlide(SAMPLE);
  try {
    const { plan } = await planAnalysis({ slide }, parseAnalysisParams({ model: 'untrained-test-tiny' }), quietContext());
    const tiles = plan.tiles.slice(3, Math.min(plan.tiles.length, 3 + 48));
    assert.ok(readUnits(slide.levels[plan.levelIndex]!, tiles, plan.readStridePx, plan.readSizePx).length >= 4, 'the range spans several read units');
    const want = await Promise.all(tiles.map((t) => slide.readRegion(t.x, t.y, plan.levelIndex, plan.readSizePx, plan.readSizePx)));
    for (const parts of [1, 2, 3, 5]) {
      const got = await readRange(slide, plan, tiles, undefined, parts);
      assert.equal(got.length, want.length);
      got.forEach((g, i) => {
        assert.equal(g.width, want[i]!.width);
        assert.ok(g.data.equals(want[i]!.data), `${parts} parts, tile ${i}`);
      });
    }
  } finally {
    await slide.close();
  }
});

test('read-ahead: on for GPU engines, off on the CPU engine, LAMINA_READ_AHEAD forces it', () => {
  const saved = process.env.LAMINA_READ_AHEAD;
  try {
    delete process.env.LAMINA_READ_AHEAD;
    assert.equal(readAhead('cpu'), false);
    assert.equal(readAhead('webgpu'), true);
    process.env.LAMINA_READ_AHEAD = '1';
    assert.equal(readAhead('cpu'), true);
    process.env.LAMINA_READ_AHEAD = '0';
    assert.equal(readAhead('webgpu'), false);
  } finally {
    if (saved === undefined) delete process.env.LAMINA_READ_AHEAD; else process.env.LAMINA_READ_AHEAD = saved;
  }
});
