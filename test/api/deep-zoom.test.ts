import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { dziGeometry, dziTileRect } from '../../src/api/deep-zoom.ts';
import { renderHeatmapTile, ScoredTileIndex } from '../../src/api/heatmap-tiles.ts';
import { COLOUR_LUT } from '../../src/api/colormap.ts';

// Scores are quantised to 1/255 through the lookup table.
const colourOf = (s: number) => COLOUR_LUT[Math.round(s * 255)]!;
import { openSlide } from '../../src/readers/registry.ts';
import { SLIDES, startApi } from './harness.ts';

test('Deep Zoom geometry follows the DZI convention (levels to 1 px, overlap on inner edges)', () => {
  const g = dziGeometry(2220, 2967);
  assert.equal(g.maxLevel, 12);
  assert.deepEqual(dziTileRect(g, 12, 0, 0), { scale: 1, level0X: 0, level0Y: 0, level0Width: 255, level0Height: 255, width: 255, height: 255 });
  const inner = dziTileRect(g, 12, 1, 1);
  assert.deepEqual([inner.level0X, inner.width, inner.height], [253, 256, 256]);
  const last = dziTileRect(g, 12, 8, 11);
  assert.equal(last.level0X + last.level0Width, 2220);
  assert.equal(last.level0Y + last.level0Height, 2967);
  assert.deepEqual(dziTileRect(g, 0, 0, 0).width, 1);
  assert.throws(() => dziTileRect(g, 12, 9, 0), /outside level 12/);
  assert.throws(() => dziTileRect(g, 13, 0, 0), /level 13 outside/);
});

test('the DZI endpoint serves the slide: tiles match the reader, are cached with ETag, and bad tiles are 404', async () => {
  const api = await startApi();
  const slide = await openSlide(join(SLIDES, 'CMU-1-Small-Region.svs'));
  try {
    const svs = await readFile(join(SLIDES, 'CMU-1-Small-Region.svs'));
    const { slide: rec } = await (await fetch(`${api.base}/api/slides?filename=s.svs`, { method: 'POST', body: svs })).json();
    const xml = await (await fetch(`${api.base}/api/slides/${rec.id}/dzi`)).text();
    assert.match(xml, /TileSize="254" Overlap="1"|Overlap="1" TileSize="254"/);
    assert.match(xml, /<Size Width="2220" Height="2967"\/>/);

    const url = `${api.base}/api/slides/${rec.id}/dzi_files/12/1_2.jpeg`;
    const r = await fetch(url);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/jpeg');
    assert.match(r.headers.get('cache-control') ?? '', /max-age=\d+/);
    const etag = r.headers.get('etag')!;
    const tile = await sharp(Buffer.from(await r.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([tile.info.width, tile.info.height], [256, 256]);
    // Same pixels as the reader within JPEG re-encoding error (quality 80: mean abs diff of a few levels).
    const ref = await slide.readRegion(253, 507, 0, 256, 256);
    let diff = 0;
    for (let i = 0; i < ref.data.length; i++) diff += Math.abs(ref.data[i]! - tile.data[i]!);
    assert.ok(diff / ref.data.length < 6, `mean abs diff ${diff / ref.data.length}`);

    assert.equal((await fetch(url, { headers: { 'if-none-match': etag } })).status, 304);
    const thumb = await fetch(`${api.base}/api/slides/${rec.id}/dzi_files/8/0_0.jpeg`);
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height], [139, 186]);

    assert.equal((await fetch(`${api.base}/api/slides/${rec.id}/dzi_files/12/99_0.jpeg`)).status, 404);
    assert.equal((await fetch(`${api.base}/api/slides/${rec.id}/dzi_files/12/0_0.png`)).status, 404);
    assert.equal((await fetch(`${api.base}/api/slides/000000000000/dzi`)).status, 404);
    const bad = await fetch(`${api.base}/api/slides/..%2F..%2Fetc/dzi`);
    assert.equal(bad.status, 400);
    assert.ok((await bad.json()).error.message);
  } finally {
    await slide.close();
    await api.stop();
  }
});

test('heatmap tiles paint scored tiles in the colour scale, transparent elsewhere and below the threshold', async () => {
  const g = dziGeometry(1000, 600);
  const tiles = [
    { x: 0, y: 0, w: 200, h: 200, score: 0.9 },
    { x: 200, y: 0, w: 200, h: 200, score: 0.2 },
  ];
  const index = new ScoredTileIndex(tiles, 1000, 600);
  const png = await renderHeatmapTile(index, g, g.maxLevel, 0, 0);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 4);
  const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * 4, (y * info.width + x) * 4 + 4)];
  assert.deepEqual(px(10, 10), [...colourOf(0.9), 255]);
  assert.deepEqual(px(210, 10), [...colourOf(0.2), 255]);
  assert.equal(px(10, 210)[3], 0, 'no score → transparent');
  const thresholded = await sharp(await renderHeatmapTile(index, g, g.maxLevel, 0, 0, 0.5)).raw().toBuffer();
  assert.equal(thresholded[(10 * 255 + 210) * 4 + 3], 0, 'below threshold → transparent');
  assert.equal(thresholded[(10 * 255 + 10) * 4 + 3], 255);
});
