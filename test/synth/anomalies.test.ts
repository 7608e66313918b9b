import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CancelledError } from '../../src/errors.ts';
import { anomalyCoverage, isInside, placeAnomalies, type Anomaly } from '../../src/synth/anomalies.ts';
import { buildStromaAtlas } from '../../src/synth/atlas.ts';
import { rasterizeMask } from '../../src/synth/mask.ts';
import { synthesizeSlide } from '../../src/synth/index.ts';
import { createTextureContext, TISSUE_THRESHOLD, tissueField } from '../../src/synth/texture.ts';
import { tempDir } from './helpers.ts';

const ctx = createTextureContext(21, 30000, 20000, buildStromaAtlas(21));
const place = (count: number, seed = 21) => placeAnomalies(ctx, seed, {
  count, kinds: ['dense-nuclei', 'morphology'], minSize: 64, maxSize: 3000, gap: 96, realPatches: { raw: [], matched: [], names: [] },
});

test('placement: in tissue, apart, sizes spread log-uniformly from min to max, deterministic', () => {
  const list = place(12);
  assert.deepEqual(list, place(12), 'same seed, same placement');
  assert.notDeepEqual(list.map((a) => a.centerX), place(12, 22).map((a) => a.centerX));
  const sizes = list.map((a) => a.size);
  assert.equal(sizes[0], 64);
  assert.equal(sizes[11], 3000);
  for (let i = 1; i < 12; i++) assert.ok(Math.abs(sizes[i] / sizes[i - 1] - (3000 / 64) ** (1 / 11)) < 0.02);
  assert.deepEqual(list.map((a) => a.kind), Array.from({ length: 12 }, (_, i) => (i % 2 ? 'morphology' : 'dense-nuclei')));
  for (const a of list) {
    assert.ok(tissueField(ctx, a.centerX, a.centerY) > TISSUE_THRESHOLD, `anomaly ${a.id} centred in tissue`);
    assert.ok(a.width <= a.size && a.height <= a.size, 'box within the nominal size');
    for (const b of list) {
      if (b === a) continue;
      const apart = a.x + a.width + 96 <= b.x || b.x + b.width + 96 <= a.x || a.y + a.height + 96 <= b.y || b.y + b.height + 96 <= a.y;
      assert.ok(apart, `anomalies ${a.id} and ${b.id} keep the gap`);
    }
  }
});

test('the box is tight around the shape, and coverage agrees with the mask raster', () => {
  const list = place(6);
  for (const a of list) {
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (let y = a.y - 3; y < a.y + a.height + 3; y++) for (let x = a.x - 3; x < a.x + a.width + 3; x++) {
      if (!isInside(a, x + 0.5, y + 0.5)) continue;
      minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
    }
    assert.ok(minX >= a.x && maxX < a.x + a.width && minY >= a.y && maxY < a.y + a.height, `anomaly ${a.id}: inside pixels within the box`);
    assert.ok(minX - a.x <= 1 && a.x + a.width - 1 - maxX <= 1 && minY - a.y <= 1 && a.y + a.height - 1 - maxY <= 1, `anomaly ${a.id}: box tight`);
    // Coverage of the box by the analytic shape equals the fraction of set pixels of a full-resolution raster.
    const one: Anomaly[] = [a];
    const cov = anomalyCoverage(one, a.x, a.y, a.width, a.height, 1);
    const mask = rasterizeMask(one, a.x + a.width, a.y + a.height, 1);
    let set = 0;
    for (let y = a.y; y < a.y + a.height; y++) for (let x = a.x; x < a.x + a.width; x++) set += mask.data[y * mask.width + x] ? 1 : 0;
    assert.ok(Math.abs(cov - set / (a.width * a.height)) < 1e-9);
    assert.ok(cov > 0.55 && cov < 0.95, `blob fills part of its box (${cov})`);
  }
  assert.equal(anomalyCoverage(list, 0, 0, 64, 64), 0, 'the slide corner is glass, no anomaly');
});

test('an aborted synth stops with CancelledError and leaves no partial slide, mask or sidecar', async (t) => {
  const out = join(tempDir(t), 'c.tiff');
  const ac = new AbortController();
  await assert.rejects(
    synthesizeSlide({ width: 4096, height: 4096, tileSize: 256, out, anomalies: 1, kinds: ['dense-nuclei'], workers: 0, signal: ac.signal, onProgress: (done) => { if (done === 5) ac.abort(); } }),
    CancelledError,
  );
  for (const f of [out, out.replace('.tiff', '.mask.png'), out.replace('.tiff', '.anomalies.json')]) assert.equal(existsSync(f), false, f);
});
