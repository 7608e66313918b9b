import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { InvalidParameterError, UnprocessableError } from '../../src/errors.ts';
import { synthesizeSlide, type Anomaly } from '../../src/synth/index.ts';
import { defaultSharedDir, hasRealSources, loadRealSources } from '../../src/synth/real-sources.ts';
import { labStats, matchStain } from '../../src/synth/stain.ts';
import { tempDir } from './helpers.ts';

const realAvailable = hasRealSources();

async function level0(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(path, { page: 0 }).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

test('bad options are refused with the parameter named', async (t) => {
  const out = join(tempDir(t), 'x.tiff');
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ width: 10, height: 100 }, /^Expected integer between 64 and 1000000 for width but received 10 of type number$/],
    [{ width: 1.5, height: 100 }, /for width but received 1.5/],
    [{ width: 100, height: 100, tileSize: 300 }, /^Expected 256 or 512 for tileSize but received 300 of type number$/],
    [{ width: 100, height: 100, levelFactor: 3 }, /Expected 2 or 4 for levelFactor/],
    [{ width: 100, height: 100, quality: 0 }, /for quality but received 0/],
    [{ width: 100, height: 100, anomalies: -1 }, /for anomalies but received -1/],
    [{ width: 100, height: 100, kinds: ['tumour'] }, /^Expected one of dense-nuclei, morphology, real-tissue, real-stain-matched for kinds but received "tumour"/],
    [{ width: 100, height: 100, background: 'real', kinds: ['morphology'] }, /without "morphology" on a real background/],
    [{ width: 100, height: 100, background: 'glass' }, /"procedural" or "real" for background/],
    [{ width: 100, height: 100, mpp: 0 }, /for mpp but received 0/],
    [{ width: 100, height: 100, maskDownsample: 3 }, /power of two from 1 to 128 for maskDownsample/],
    [{ width: 5000, height: 5000, minAnomalySize: 32, maskDownsample: 64 }, /at most 18 for anomalies of 32 px for maskDownsample/],
  ];
  for (const [o, message] of cases) {
    await assert.rejects(synthesizeSlide({ out, ...o } as never), (e: unknown) => e instanceof InvalidParameterError && message.test(e.message), JSON.stringify(o));
  }
  assert.equal(existsSync(out), false, 'nothing written for bad options');
});

test('more anomalies than fit are an UnprocessableError, not a hang', async (t) => {
  const out = join(tempDir(t), 'x.tiff');
  await assert.rejects(
    synthesizeSlide({ width: 1024, height: 1024, out, anomalies: 200, minAnomalySize: 100, maxAnomalySize: 150, kinds: ['dense-nuclei'] }),
    (e: unknown) => e instanceof UnprocessableError && /Could not place anomaly \d+ \(\d+ px\) inside tissue without overlap on a 1024×1024 slide/.test(e.message),
  );
});

test('an anomaly-free slide has an empty mask and the same tissue as its seed-mate outside the anomalies', async (t) => {
  const dir = tempDir(t);
  const base = { width: 2048, height: 2048, seed: 5, tileSize: 256, maxAnomalySize: 400, kinds: ['dense-nuclei', 'morphology'] } as const;
  const clean = await synthesizeSlide({ ...base, anomalies: 0, out: join(dir, 'clean.tiff') });
  const planted = await synthesizeSlide({ ...base, anomalies: 4, out: join(dir, 'planted.tiff') });
  assert.deepEqual(clean.anomalies, []);
  assert.deepEqual(JSON.parse(readFileSync(clean.sidecarPath, 'utf8')).anomalies, []);
  const { data: mask } = await sharp(clean.maskPath).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  assert.ok(mask.every((v) => v === 0));
  assert.equal(planted.anomalies.length, 4);
  const a = await level0(clean.path), b = await level0(planted.path);
  // JPEG codes 16 × 16 blocks independently, so pixels more than a block away from every anomaly are identical.
  const near = (x: number, y: number) => planted.anomalies.some((q: Anomaly) => x >= q.x - 18 && x < q.x + q.width + 18 && y >= q.y - 18 && y < q.y + q.height + 18);
  let same = 0, differentNear = 0, tissue = 0;
  for (let y = 0; y < a.height; y++) for (let x = 0; x < a.width; x++) {
    const p = (y * a.width + x) * 3;
    const equal = a.data[p] === b.data[p] && a.data[p + 1] === b.data[p + 1] && a.data[p + 2] === b.data[p + 2];
    if (!near(x, y)) { assert.ok(equal, `pixel (${x}, ${y}) differs away from anomalies`); same++; if (a.data[p + 1] < 200) tissue++; }
    else if (!equal) differentNear++;
  }
  assert.ok(tissue > 0.1 * same, 'the comparison covers tissue, not only glass');
  assert.ok(differentNear > 0.3 * planted.anomalies.reduce((s, q) => s + q.width * q.height, 0) * 0.6, 'anomalies changed their pixels');
});

test('Reinhard stain matching moves a real patch onto the target Lab statistics', { skip: !realAvailable && 'shared H&E not present' }, async () => {
  const { anomalies, background } = await loadRealSources(defaultSharedDir(), true);
  const target = labStats(background!.data);
  for (const patch of anomalies) {
    const before = labStats(patch.data), after = labStats(matchStain(patch.data, target));
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(after.mean[c] - target.mean[c]) < 1.5, `${patch.name} channel ${c} mean ${after.mean[c]} vs ${target.mean[c]} (was ${before.mean[c]})`);
      assert.ok(Math.abs(after.std[c] / target.std[c] - 1) < 0.15, `${patch.name} channel ${c} std ${after.std[c]} vs ${target.std[c]}`);
    }
  }
});

test('a real-tissue background slide: CMU-1 texture, real and stain-matched real anomalies', { skip: !realAvailable && 'shared H&E not present' }, async (t) => {
  const dir = tempDir(t);
  const r = await synthesizeSlide({ width: 3072, height: 3072, anomalies: 3, seed: 9, background: 'real', maxAnomalySize: 700, out: join(dir, 'real.tiff') });
  assert.deepEqual(r.anomalies.map((a) => a.kind).sort(), ['dense-nuclei', 'real-stain-matched', 'real-tissue']);
  const side = JSON.parse(readFileSync(r.sidecarPath, 'utf8'));
  assert.equal(side.background, 'real');
  assert.ok(side.realSources.some((s: string) => s.startsWith('slides/CMU-1-Small-Region.svs')));
  for (const a of r.anomalies.filter((q) => q.kind.startsWith('real'))) assert.ok(side.realSources.includes(a.source));
  // The tissue is the CMU-1 crop's: its colour statistics carry over (glass excluded on both sides).
  const { background } = await loadRealSources(defaultSharedDir(), true);
  const img = await level0(r.path);
  const slideStats = labStats(img.data), sourceStats = labStats(background!.data);
  const dE = Math.hypot(...[0, 1, 2].map((c) => slideStats.mean[c] - sourceStats.mean[c]));
  assert.ok(dE < 6, `slide tissue vs CMU-1 crop ΔE ${dE.toFixed(1)}`);
});
