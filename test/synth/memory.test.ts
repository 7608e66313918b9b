import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.ts';

/** Makes a slide in a fresh process (2 render workers) and returns that process's peak RSS in MB. */
function peakRssMb(width: number, height: number, out: string): number {
  const child = fileURLToPath(new URL('./make-slide-child.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, String(width), String(height), out, '2'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!).maxRssMb;
}

test('memory stays bounded: a 134-megapixel slide needs no more than a 4-megapixel one', (t) => {
  const dir = tempDir(t);
  const small = peakRssMb(2048, 2048, join(dir, 'small.tiff'));
  const big = peakRssMb(16384, 8192, join(dir, 'big.tiff'));
  t.diagnostic(`peak RSS: 2048² ${small.toFixed(0)} MB, 16384×8192 ${big.toFixed(0)} MB`);
  // The big slide's level 0 alone is 384 MB of RGB: holding it (or a level of it) would break both bounds.
  assert.ok(big < 500, `peak RSS ${big.toFixed(0)} MB`);
  assert.ok(big - small < 120, `RSS grew by ${(big - small).toFixed(0)} MB from 4 to 134 megapixels`);
});
