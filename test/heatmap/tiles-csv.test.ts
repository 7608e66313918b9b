/**
 * tiles.csv is written from lines made as they are pulled (`tilesCsvLines` through
 * `writeAtomic`), no longer as one string: the file must be byte for byte what the one-string
 * version wrote, and the lines must be made lazily.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TILES_CSV_HEADER, tilesCsv, tilesCsvLines } from '../../src/heatmap/tiles-csv.ts';
import { writeAtomic } from '../../src/pipeline/output.ts';
import type { PlannedTile } from '../../src/tiling/tile-plan.ts';

/** The one-string version, as it was before streaming (commit 33f0007). */
function oneString(tiles: readonly PlannedTile[], scores: ArrayLike<number>, raw: ArrayLike<number>): string {
  const fmt = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(7)).toString() : '');
  const lines = [TILES_CSV_HEADER];
  tiles.forEach((t, i) => lines.push(`${t.index},${t.col},${t.row},${t.x},${t.y},${t.width},${t.height},${t.tissue},${fmt(scores[i]!)},${fmt(raw[i]!)}`));
  return `${lines.join('\n')}\n`;
}

function plan(n: number) {
  const tiles: PlannedTile[] = Array.from({ length: n }, (_, i) => ({
    index: i, col: i % 311, row: Math.floor(i / 311), x: (i % 311) * 224, y: Math.floor(i / 311) * 224, width: 224, height: 224, tissue: ((i * 37) % 101) / 100, block: i >> 4,
  }));
  // scores with 7 significant digits, tiny and huge raw values, and non-finite ones (written empty)
  const scores = Float64Array.from(tiles, (_, i) => (i % 997 === 5 ? NaN : ((i * 2654435761) % 1e6) / 1e6));
  const raw = Float64Array.from(tiles, (_, i) => (i % 1009 === 7 ? Infinity : Math.exp(((i % 61) - 30) / 2) * 1.23456789));
  return { tiles, scores, raw };
}

test('tiles.csv streamed through writeAtomic equals the one-string output, byte for byte', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lamina-tiles-csv-'));
  try {
    for (const n of [0, 1, 29_131]) {
      const { tiles, scores, raw } = plan(n);
      await writeAtomic(dir, 'tiles.csv', tilesCsvLines(tiles, scores, raw));
      const want = oneString(tiles, scores, raw);
      assert.equal(await readFile(join(dir, 'tiles.csv'), 'utf8'), want, `${n} tiles`);
      assert.equal(tilesCsv(tiles, scores, raw), want);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('tilesCsvLines makes a row only when it is pulled', () => {
  const { tiles, scores, raw } = plan(1000);
  let reads = 0;
  const counted = new Proxy(tiles, { get: (t, k) => { if (typeof k === 'string' && /^\d+$/.test(k)) reads++; return Reflect.get(t, k); } });
  const lines = tilesCsvLines(counted, scores, raw);
  assert.equal(lines.next().value, `${TILES_CSV_HEADER}\n`);
  assert.equal(reads, 0);
  lines.next();
  lines.next();
  assert.equal(reads, 2);
});
