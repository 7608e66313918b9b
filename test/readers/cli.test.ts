import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { openSlide } from '../../src/readers/registry.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const cmu = join(repo, '..', 'shared', 'slides', 'CMU-1-Small-Region.svs');
const tcga = join(repo, '..', 'shared', 'slides', 'tcga-cr-7395-01a-01-ts1.svs');
const run = (args: string[]) => spawnSync(process.execPath, [join(repo, 'bin', 'lamina.js'), ...args], { encoding: 'utf8' });

test('lamina info prints levels, mpp, associated images and the Aperio quirks; --json is parseable', { skip: !existsSync(cmu) && 'shared slide missing' }, () => {
  let r = run(['info', cmu]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /format\s+aperio \(vendor aperio\)/);
  assert.match(r.stdout, /dimensions\s+2220 × 2967/);
  assert.match(r.stdout, /mpp\s+0\.499 × 0\.499 µm\/px/);
  assert.match(r.stdout, /0: 2220 × 2967 .*tile 240 × 240 {2}jpeg/);
  assert.match(r.stdout, /thumbnail \(574 × 768\), label \(387 × 463\), macro \(1280 × 431\)/);
  assert.match(r.stdout, /warning: Aperio key 'OriginalWidth' appears twice/);
  r = run(['info', tcga, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.equal(info.format, 'aperio');
  assert.deepEqual(info.levels.map((l: { compression: string; width: number }) => [l.width, l.compression]), [[4443, 'jp2k'], [2221, 'jp2k']]);
  assert.equal(info.mpp, null);
  assert.equal(info.objectivePower, null);
});

test('lamina region writes the same pixels readRegion returns', { skip: !existsSync(tcga) && 'shared slide missing' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lamina-region-'));
  try {
    const out = join(dir, 'r.png');
    const r = run(['region', tcga, '--x', '4097', '--y=-10', '--level', '1', '--width', '300', '--height', '200', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [300, 200, 3]);
    const slide = await openSlide(tcga);
    const expected = await slide.readRegion(4097, -10, 1, 300, 200);
    await slide.close();
    assert.ok(data.equals(expected.data));
    assert.deepEqual([...data.subarray(0, 3)], [255, 255, 255], 'row above the slide is white');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
