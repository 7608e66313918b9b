import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { findRegions } from '../../src/heatmap/regions.ts';
import { regionsGeoJson, stableUuid } from '../../src/heatmap/geojson.ts';
import { buildScoreGrid, heatmapPng, scoreGridBytes, type ScoreGrid } from '../../src/heatmap/score-grid.ts';
import { tilesCsv, TILES_CSV_HEADER } from '../../src/heatmap/tiles-csv.ts';

function gridFrom(rows: string[]): ScoreGrid {
  const cols = rows[0]!.length;
  const data = new Float32Array(cols * rows.length);
  rows.forEach((r, y) => [...r].forEach((c, x) => { data[y * cols + x] = c === '#' ? 0.9 : c === '.' ? 0.1 : NaN; }));
  return { cols, rows: rows.length, data };
}

function shoelace(ring: [number, number][]): number {
  let s = 0;
  for (let i = 0; i + 1 < ring.length; i++) s += ring[i]![0] * ring[i + 1]![1] - ring[i + 1]![0] * ring[i]![1];
  return s / 2;
}

test('a ring region becomes one polygon with a hole, in level-0 units', () => {
  const grid = gridFrom([
    '......',
    '.####.',
    '.#..#.',
    '.####.',
    '......',
  ]);
  const [region, ...rest] = findRegions(grid, 0.5, 1, 100);
  assert.equal(rest.length, 0);
  assert.equal(region!.tiles, 10);
  assert.equal(region!.polygon.length, 2, 'outer ring and one hole');
  const [outer, hole] = region!.polygon;
  assert.deepEqual(outer![0], outer![outer!.length - 1], 'closed');
  assert.equal(shoelace(outer!), 4 * 3 * 100 * 100, 'outer ring counter-clockwise (RFC 7946), 4×3 cells');
  assert.equal(shoelace(hole!), -2 * 100 * 100, 'hole clockwise, 2 cells');
  assert.deepEqual(region!.bbox, { x: 100, y: 100, width: 400, height: 300 });
  assert.equal(outer!.length, 5, 'collinear vertices dropped');
});

test('cells touching only at a corner are separate regions; small ones are dropped; NaN is never a region', () => {
  const grid = gridFrom([
    '##..',
    '##..',
    '..#x',
    'xxx#',
  ]);
  const regions = findRegions(grid, 0.5, 1, 10);
  assert.equal(regions.length, 3);
  assert.deepEqual(regions.map((r) => r.tiles).sort(), [1, 1, 4]);
  assert.equal(findRegions(grid, 0.5, 2, 10).length, 1);
  for (const r of regions) assert.equal(shoelace(r.polygon[0]!), r.tiles * 100);
});

test('a hole touching the outside at one corner: loops split at the pinch, areas still add up', () => {
  const grid = gridFrom([
    '####',
    '#..#',
    '#.#.',
    '####',
  ]);
  const [region] = findRegions(grid, 0.5, 1, 1);
  assert.equal(region!.tiles, 12);
  const areas = region!.polygon.map(shoelace);
  assert.equal(areas.reduce((a, b) => a + b, 0), 12);
  assert.ok(areas[0]! > 0 && areas.slice(1).every((a) => a < 0), `outer first, holes after: ${areas}`);
  for (const ring of region!.polygon) {
    const inner = ring.slice(0, -1).map(([x, y]) => `${x},${y}`);
    assert.equal(new Set(inner).size, inner.length, 'no ring visits a vertex twice');
  }
});

test('regions.geojson is a QuPath annotation FeatureCollection with stable ids', () => {
  const regions = findRegions(gridFrom(['.##.', '.##.']), 0.5, 1, 224);
  const geo = regionsGeoJson(regions, 'abc') as { type: string; features: { id: string; geometry: { type: string; coordinates: number[][][] }; properties: Record<string, unknown> }[] };
  assert.equal(geo.type, 'FeatureCollection');
  const f = geo.features[0]!;
  assert.equal(f.geometry.type, 'Polygon');
  assert.equal(f.properties.objectType, 'annotation');
  assert.deepEqual(f.properties.classification, { name: 'Anomaly', color: [220, 30, 30] });
  assert.deepEqual(f.geometry.coordinates[0]![0], [224, 0]);
  assert.match(f.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(f.id, stableUuid('abc:region:1'));
});

test('score grid, heatmap.png (one pixel per cell, transparent without tissue) and tiles.csv', async () => {
  const tiles = [
    { index: 0, col: 0, row: 0, x: 0, y: 0, width: 224, height: 224, tissue: 1, block: 0 },
    { index: 1, col: 2, row: 1, x: 448, y: 224, width: 224, height: 224, tissue: 0.75, block: 0 },
  ];
  const grid = buildScoreGrid(3, 2, tiles, [0.25, 1]);
  const bytes = scoreGridBytes(grid);
  assert.equal(bytes.length, 24);
  assert.equal(bytes.readFloatLE(0), 0.25);
  assert.ok(Number.isNaN(bytes.readFloatLE(4)));
  assert.equal(bytes.readFloatLE(5 * 4), 1);
  const { data, info } = await sharp(await heatmapPng(grid)).raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([info.width, info.height, info.channels], [3, 2, 4]);
  assert.equal(data[4 + 3], 0, 'no tissue → alpha 0');
  assert.ok(data[3]! > 0 && data[3]! < data[5 * 4 + 3]!, 'alpha rises with the score');
  assert.deepEqual([...data.subarray(5 * 4, 5 * 4 + 3)], [200, 20, 20], 'score 1 is the hottest colour');
  const csv = tilesCsv(tiles, [0.25, 1], [3.5, 9]).trim().split('\n');
  assert.equal(csv[0], TILES_CSV_HEADER);
  assert.equal(csv[2], '1,2,1,448,224,224,224,0.75,1,9');
});
