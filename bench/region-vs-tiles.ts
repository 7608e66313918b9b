/**
 * Issue 7: localisation with native-resolution regions vs 224-px tiles, on synthetic planted-
 * anomaly slides. Both modes run the same encoder (WebGPU engine) at level 0 and score against a
 * memory bank from an anomaly-free synthetic slide (PatchCore: distance to the nearest bank
 * entry, on the GPU kNN kernel). Regions: every 16-px cell gets its own token's score. Tiles:
 * every cell inherits its tile's score. Reported: patch AUROC against the true mask at 16-px cells,
 * and the smallest anomaly found (any of its cells above the 99th percentile of normal cells).
 * Usage: node --import tsx bench/region-vs-tiles.ts [--size 2048] [--region 1024] [--model models/lamina-vit-tiny-dino] [--anomalies 6]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { synthesizeSlide, readTruth } from '../src/synth/index.ts';
import { openProbe, probePath } from '../src/readers/registry.ts';
import { WebGpuVitEncoder } from '../src/encoder/webgpu-vit-encoder.ts';
import { regionFeatures } from '../src/encoder/region-features.ts';
import { normalizeInto } from '../src/encoder/preprocess.ts';
import { KnnSearch } from '../kernels/knn/knn.ts';
import { auroc } from '../src/scoring/metrics.ts';
import type { Slide } from '../src/readers/types.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const { values } = parseArgs({ options: { size: { type: 'string' }, region: { type: 'string' }, model: { type: 'string' }, anomalies: { type: 'string' }, seed: { type: 'string' } } });
const size = Number(values.size ?? 2048), R = Number(values.region ?? 1024), T = 224;
const dir = mkdtempSync(join(tmpdir(), 'lamina-rvt-'));
const enc = await WebGpuVitEncoder.create(values.model ?? 'models/lamina-vit-tiny-dino', { maxBatch: 16 });
const P = enc.manifest.patchSize, D = enc.config.dim, cells = size / P;
console.log(`encoder ${enc.manifest.name} on ${enc.describe()}; slides ${size}² px, regions ${R}², tiles ${T} px, cells ${P} px`);

async function slideFeatures(slide: Slide) {
  const t0 = performance.now();
  const region = new Float32Array(cells * cells * D);
  for (let y = 0; y + R <= size; y += R) for (let x = 0; x + R <= size; x += R) {
    const tr = performance.now();
    const { features, grid } = await regionFeatures(slide, enc, x, y, R);
    if (process.env.LAMINA_VERBOSE) console.log(`region (${x}, ${y}): ${(performance.now() - tr).toFixed(0)} ms`);
    for (let gy = 0; gy < grid; gy++) for (let gx = 0; gx < grid; gx++) {
      region.set(features.subarray((gy * grid + gx) * D, (gy * grid + gx + 1) * D), ((y / P + gy) * cells + x / P + gx) * D);
    }
  }
  const tRegion = performance.now() - t0;
  const per = Math.floor(size / T);
  const px = new Float32Array(per * per * 3 * T * T);
  for (let ty = 0; ty < per; ty++) for (let tx = 0; tx < per; tx++) {
    const img = await slide.readRegion(tx * T, ty * T, 0, T, T);
    normalizeInto(img.data, T, enc.manifest.mean, enc.manifest.std, px, (ty * per + tx) * 3 * T * T);
  }
  const t1 = performance.now();
  const tiles = (await enc.embed(px, per * per)).embeddings;
  return { region, tiles, per, tRegion, tTiles: performance.now() - t1 };
}

const seed = Number(values.seed ?? 5);
const normal = await synthesizeSlide({ width: size, height: size, out: join(dir, 'normal.tiff'), anomalies: 0, seed: seed + 100 });
const test = await synthesizeSlide({ width: size, height: size, out: join(dir, 'test.tiff'), anomalies: Number(values.anomalies ?? 6), seed, minAnomalySize: 48, maxAnomalySize: Math.max(64, Math.min(400, Math.floor(size / 6))) });
const { mask } = await readTruth(test.sidecarPath);
const open = async (p: string) => openProbe(await probePath(p));
const [ns, ts] = [await open(normal.path), await open(test.path)];
const nf = await slideFeatures(ns), tf = await slideFeatures(ts);
console.log(`encode: regions ${(tf.tRegion / 1000).toFixed(1)} s, tiles ${(tf.tTiles / 1000).toFixed(1)} s per slide`);

const score = async (bank: Float32Array, count: number, q: Float32Array, n: number) => {
  const knn = await KnnSearch.create(enc.model.ctx, { dim: D, count, data: bank });
  try { return (await knn.search(q, n, 1)).scores; } finally { knn.destroy(); }
};
const regionScores = await score(nf.region, cells * cells, tf.region, cells * cells);
const tileScores = await score(nf.tiles, nf.per * nf.per, tf.tiles, tf.per * tf.per);

// cells covered by whole tiles only, so both modes score the same cells
const covered = Math.floor(size / T) * T / P;
const labels: number[] = [], rs: number[] = [], tsc: number[] = [], cellIndex: number[] = [];
for (let cy = 0; cy < Math.floor(covered); cy++) for (let cx = 0; cx < Math.floor(covered); cx++) {
  const mx = Math.floor(((cx + 0.5) * P) / mask.downsample), my = Math.floor(((cy + 0.5) * P) / mask.downsample);
  labels.push(mask.data[my * mask.width + mx]! > 0 ? 1 : 0);
  rs.push(regionScores[cy * cells + cx]!);
  tsc.push(tileScores[Math.floor((cy * P) / T) * tf.per + Math.floor((cx * P) / T)]!);
  cellIndex.push(cy * cells + cx);
}
const smallestFound = (s: number[]) => {
  const normals = s.filter((_, i) => labels[i] === 0).sort((a, b) => a - b);
  const thr = normals[Math.floor(0.99 * (normals.length - 1))]!;
  const found = test.anomalies.filter((a) => s.some((v, i) => {
    const cx = cellIndex[i]! % cells, cy = Math.floor(cellIndex[i]! / cells);
    const x = (cx + 0.5) * P, y = (cy + 0.5) * P;
    return v > thr && x >= a.x && x < a.x + a.width && y >= a.y && y < a.y + a.height;
  }));
  return { found: found.length, smallest: found.length ? Math.min(...found.map((a) => a.size)) : NaN };
};
const r = smallestFound(rs), t = smallestFound(tsc);
console.log(`anomalies planted: ${test.anomalies.length}, sizes ${test.anomalies.map((a) => a.size).sort((a, b) => a - b).join(', ')} px; anomalous cells ${labels.filter((l) => l).length} of ${labels.length}`);
console.log(`| mode | patch AUROC (16-px cells) | anomalies found (99th pct of normal cells) | smallest found |`);
console.log(`| native ${R}² regions, per-token scores | ${auroc(rs, labels).toFixed(4)} | ${r.found} | ${Number.isNaN(r.smallest) ? 'none' : `${r.smallest} px`} |`);
console.log(`| ${T}-px tiles, per-tile scores | ${auroc(tsc, labels).toFixed(4)} | ${t.found} | ${Number.isNaN(t.smallest) ? 'none' : `${t.smallest} px`} |`);
await Promise.all([ns.close(), ts.close()]);
await enc.close();
rmSync(dir, { recursive: true, force: true });
