import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { fromFile } from 'geotiff';
import sharp from 'sharp';
import { type Anomaly, readTruth, type SynthResult, type SynthSidecar, synthesizeSlide } from '../../src/synth/index.ts';
import { rgbToLab } from '../../src/synth/stain.ts';
import { hasOpenSlide, openslideJson, sha256 } from './helpers.ts';

// One slide shared by the read-back tests: 3 levels (factor 2, 256-px tiles), every anomaly kind.
const dir = mkdtempSync(join(tmpdir(), 'lamina-synth-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let slide: SynthResult;
const W = 6000, H = 4000; // not multiples of the tile size: edge tiles are partly outside the image
const OPTS = { width: W, height: H, anomalies: 8, seed: 11, tileSize: 256, levelFactor: 2, minAnomalySize: 64, maxAnomalySize: 900, workers: 0 } as const;

before(async () => {
  slide = await synthesizeSlide({ ...OPTS, out: join(dir, 'a.tiff') });
});

async function readLevel(path: string, level: number, left: number, top: number, width: number, height: number): Promise<Uint8Array> {
  const { data } = await sharp(path, { page: level }).extract({ left, top, width, height }).raw().toBuffer({ resolveWithObject: true });
  return data;
}

function boxDown(src: Uint8Array, w: number, h: number, f: number): Uint8Array {
  const out = new Uint8Array((w / f) * (h / f) * 3);
  for (let y = 0; y < h / f; y++) for (let x = 0; x < w / f; x++) for (let c = 0; c < 3; c++) {
    let s = 0;
    for (let j = 0; j < f; j++) for (let i = 0; i < f; i++) s += src[((y * f + j) * w + x * f + i) * 3 + c];
    out[(y * (w / f) + x) * 3 + c] = Math.round(s / (f * f));
  }
  return out;
}

const meanAbsDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

test('the slide is a tiled pyramidal BigTIFF with 3 levels that libvips reads', async () => {
  const head = readFileSync(slide.path).subarray(0, 8);
  assert.equal(head.readUInt16LE(2), 43, 'BigTIFF');
  assert.deepEqual(slide.levels.map((l) => [l.width, l.height, l.downsample]), [[6000, 4000, 1], [3000, 2000, 2], [1500, 1000, 4]]);
  const meta = await sharp(slide.path).metadata();
  assert.equal(meta.pages, 3);
  const tiff = await fromFile(slide.path);
  for (let l = 0; l < 3; l++) {
    const m = await sharp(slide.path, { page: l }).metadata();
    assert.equal(m.width, slide.levels[l].width);
    assert.equal(m.height, slide.levels[l].height);
    const im = await tiff.getImage(l);
    assert.ok(im.isTiled);
    assert.equal(im.getTileWidth(), 256);
    assert.equal(im.getTileHeight(), 256);
  }
  assert.equal(slide.tiles, 24 * 16 + 12 * 8 + 6 * 4);
});

test('OpenSlide opens it as generic-tiff with the synthetic description and resolution tags', (t) => {
  if (!hasOpenSlide) return t.skip('python3-openslide not installed');
  const os = openslideJson(slide.path, `s = openslide.OpenSlide(path)
p = s.properties
print(json.dumps({"dims": s.level_dimensions, "down": s.level_downsamples, "vendor": p.get("openslide.vendor"),
  "comment": p.get("openslide.comment"), "xres": p.get("tiff.XResolution"), "unit": p.get("tiff.ResolutionUnit"),
  "tile": p.get("openslide.level[0].tile-width")}))`);
  assert.deepEqual(os.dims, [[6000, 4000], [3000, 2000], [1500, 1000]]);
  assert.deepEqual(os.down, [1, 2, 4]);
  assert.equal(os.vendor, 'generic-tiff');
  assert.match(os.comment, /^Lamina synthetic slide \(not real tissue\): seed=11 .*\|MPP = 0\.5$/);
  assert.equal(Number(os.xres), 20000, '0.5 µm/px = 20000 px/cm');
  assert.equal(os.unit, 'centimeter');
  assert.equal(os.tile, '256');
  // The partial edge tiles decode the same through OpenSlide and libvips (level 2's bottom-right corner).
  const corner = openslideJson(slide.path, `s = openslide.OpenSlide(path)
im = s.read_region((4 * (1500 - 300), 4 * (1000 - 200)), 2, (300, 200)).convert("RGB")
print(json.dumps(list(im.tobytes())))`);
  return readLevel(slide.path, 2, 1200, 800, 300, 200).then((px) => {
    assert.ok(meanAbsDiff(px, Uint8Array.from(corner)) < 1, 'OpenSlide and libvips agree on the corner');
  });
});

test('lower levels agree with the box-filtered level 0 (within JPEG noise)', async (t) => {
  const a = [...slide.anomalies].sort((p, q) => q.size - p.size)[0];
  const x = Math.max(0, Math.min(W - 1024, Math.round(a.centerX / 4) * 4 - 512));
  const y = Math.max(0, Math.min(H - 1024, Math.round(a.centerY / 4) * 4 - 512));
  const l0 = await readLevel(slide.path, 0, x, y, 1024, 1024);
  const l1 = await readLevel(slide.path, 1, x / 2, y / 2, 512, 512);
  const l2 = await readLevel(slide.path, 2, x / 4, y / 4, 256, 256);
  // Per pixel the two differ by the JPEG error of both levels (quality 85 on busy texture: a few grey
  // levels); averaged over 16 × 16 level-0 blocks most of it cancels (what remains is mostly 4:2:0
  // chroma error), while a shift of one tile gives several times more.
  const d1 = meanAbsDiff(boxDown(l0, 1024, 1024, 2), l1);
  const d2 = meanAbsDiff(boxDown(l0, 1024, 1024, 4), l2);
  assert.ok(d1 < 6, `level 1 vs level 0 ↓2: ${d1}`);
  assert.ok(d2 < 6, `level 2 vs level 0 ↓4: ${d2}`);
  const c1 = meanAbsDiff(boxDown(l0, 1024, 1024, 16), boxDown(l1, 512, 512, 8));
  const c2 = meanAbsDiff(boxDown(l0, 1024, 1024, 16), boxDown(l2, 256, 256, 4));
  t.diagnostic(`mean abs diff per pixel: L1 ${d1.toFixed(2)}, L2 ${d2.toFixed(2)}; at 1/16: L1 ${c1.toFixed(2)}, L2 ${c2.toFixed(2)}`);
  assert.ok(c1 < 2.5, `level 1 vs level 0 at 1/16: ${c1}`);
  assert.ok(c2 < 2.5, `level 2 vs level 0 at 1/16: ${c2}`);
  // A misplaced tile would show: shifting level 1 by one 256-px tile breaks the agreement.
  const shifted = await readLevel(slide.path, 1, x / 2 + 256, y / 2, 512, 512);
  assert.ok(meanAbsDiff(boxDown(l0, 1024, 1024, 16), boxDown(shifted, 512, 512, 8)) > c1 + 3);
  // The region is not flat: a pyramid of blank tiles would also agree.
  const mean = l0.reduce((s, v) => s + v, 0) / l0.length;
  const spread = l0.reduce((s, v) => s + Math.abs(v - mean), 0) / l0.length;
  assert.ok(spread > 10, `texture present (${spread})`);
});

/** 8-connected components of a binary mask, with their bounding boxes and pixel counts. */
function components(mask: Uint8Array, w: number, h: number) {
  const label = new Int32Array(w * h);
  const out: Array<{ minX: number; minY: number; maxX: number; maxY: number; count: number }> = [];
  for (let i = 0; i < w * h; i++) {
    if (!mask[i] || label[i]) continue;
    const c = { minX: w, minY: h, maxX: -1, maxY: -1, count: 0 };
    const stack = [i];
    label[i] = out.length + 1;
    while (stack.length) {
      const p = stack.pop()!, px = p % w, py = (p - px) / w;
      c.count++; c.minX = Math.min(c.minX, px); c.maxX = Math.max(c.maxX, px); c.minY = Math.min(c.minY, py); c.maxY = Math.max(c.maxY, py);
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const qx = px + dx, qy = py + dy, q = qy * w + qx;
        if (qx >= 0 && qy >= 0 && qx < w && qy < h && mask[q] && !label[q]) { label[q] = out.length + 1; stack.push(q); }
      }
    }
    out.push(c);
  }
  return out;
}

test('the mask marks exactly the planted anomalies listed in the sidecar', async () => {
  const side = JSON.parse(readFileSync(slide.sidecarPath, 'utf8')) as SynthSidecar;
  assert.equal(side.anomalies.length, 8);
  assert.deepEqual(side.anomalies, slide.anomalies);
  assert.deepEqual(new Set(side.anomalies.map((a) => a.kind)), new Set(['dense-nuclei', 'morphology', 'real-tissue', 'real-stain-matched']));
  const d = side.maskDownsample;
  const { data, info } = await sharp(slide.maskPath).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 1);
  assert.deepEqual([info.width, info.height], [side.maskWidth, side.maskHeight]);
  assert.deepEqual([info.width, info.height], [Math.ceil(W / d), Math.ceil(H / d)]);
  assert.ok(data.every((v) => v === 0 || v === 255));
  const comps = components(data, info.width, info.height);
  assert.equal(comps.length, side.anomalies.length, 'one connected component per anomaly');
  const matched = new Set<number>();
  for (const c of comps) {
    const inBox = (a: Anomaly) => c.minX * d >= a.x - d && (c.maxX + 1) * d <= a.x + a.width + d && c.minY * d >= a.y - d && (c.maxY + 1) * d <= a.y + a.height + d;
    const owners = side.anomalies.filter(inBox);
    assert.equal(owners.length, 1, `component at mask (${c.minX}, ${c.minY}) lies in exactly one box`);
    const a = owners[0];
    matched.add(a.id);
    // Its extent spans the box to within one mask pixel, and its area is the blob's (≈ box area · π/4 ± boundary).
    assert.ok(Math.abs(c.minX * d - a.x) <= d && Math.abs((c.maxX + 1) * d - (a.x + a.width)) <= d, `anomaly ${a.id} x extent`);
    const area = c.count * d * d, boxArea = a.width * a.height;
    assert.ok(area > 0.55 * boxArea && area < 0.95 * boxArea, `anomaly ${a.id}: mask area ${area} vs box ${boxArea}`);
  }
  assert.equal(matched.size, side.anomalies.length);
  const truth = await readTruth(slide.sidecarPath);
  assert.deepEqual(truth.sidecar, side);
  assert.deepEqual(truth.mask.data, new Uint8Array(data));
  assert.equal(truth.mask.downsample, d);
  assert.ok(Math.min(...side.anomalies.map((a) => a.size)) <= 64, 'sizes reach down to the smallest requested');
});

/** Mean Lab inside the anomaly's mask and in a ring of mask pixels just outside its box. */
async function insideVsRing(a: Anomaly) {
  const d = slide.maskDownsample, pad = Math.round(a.size * 0.4);
  const left = Math.max(0, a.x - pad), top = Math.max(0, a.y - pad);
  const w = Math.min(W, a.x + a.width + pad) - left, h = Math.min(H, a.y + a.height + pad) - top;
  const px = await readLevel(slide.path, 0, left, top, w, h);
  const { data: mask, info } = await sharp(slide.maskPath).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  const acc = { in: [0, 0, 0, 0], ring: [0, 0, 0, 0] };
  const lab = [0, 0, 0];
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const gx = left + x, gy = top + y;
    const inside = mask[Math.floor(gy / d) * info.width + Math.floor(gx / d)] === 255;
    const outsideBox = gx < a.x - 8 || gx > a.x + a.width + 8 || gy < a.y - 8 || gy > a.y + a.height + 8;
    const p = (y * w + x) * 3;
    if (px[p] > 235 && px[p + 1] > 235) continue; // glass and lumens
    const bucket = inside ? acc.in : outsideBox ? acc.ring : null;
    if (!bucket) continue;
    rgbToLab(px[p], px[p + 1], px[p + 2], lab);
    bucket[0] += lab[0]; bucket[1] += lab[1]; bucket[2] += lab[2]; bucket[3]++;
  }
  const mean = (b: number[]) => [b[0] / b[3], b[1] / b[3], b[2] / b[3]];
  return { inside: mean(acc.in), ring: mean(acc.ring) };
}

test('pixels follow the mask: dense nuclei are darker, stain-matched kinds keep the surrounding colour', async (t) => {
  const big = slide.anomalies.filter((a) => a.size >= 250);
  const byKind = (k: string) => big.find((a) => a.kind === k);
  for (const kind of ['dense-nuclei', 'morphology', 'real-stain-matched']) assert.ok(byKind(kind), `a large ${kind} anomaly`);
  const dense = await insideVsRing(byKind('dense-nuclei')!);
  t.diagnostic(`dense-nuclei L inside ${dense.inside[0].toFixed(1)} vs around ${dense.ring[0].toFixed(1)}`);
  assert.ok(dense.ring[0] - dense.inside[0] > 15, `dense nuclei darker: L ${dense.inside[0]} vs ${dense.ring[0]}`);
  for (const kind of ['morphology', 'real-stain-matched']) {
    const s = await insideVsRing(byKind(kind)!);
    const dE = Math.hypot(s.inside[0] - s.ring[0], s.inside[1] - s.ring[1], s.inside[2] - s.ring[2]);
    t.diagnostic(`${kind}: ΔE of mean Lab inside vs around ${dE.toFixed(1)}`);
    assert.ok(dE < 10, `${kind}: mean Lab inside ${s.inside.map((v) => v.toFixed(1))} vs around ${s.ring.map((v) => v.toFixed(1))} (ΔE ${dE.toFixed(1)})`);
  }
});

test('same options give byte-identical files whether rendered inline or on worker threads; another seed differs', async (t) => {
  const other = mkdtempSync(join(tmpdir(), 'lamina-synth-'));
  t.after(() => rmSync(other, { recursive: true, force: true }));
  const again = await synthesizeSlide({ ...OPTS, workers: 2, out: join(other, 'a.tiff') });
  assert.equal(sha256(again.path), sha256(slide.path));
  assert.equal(sha256(again.maskPath), sha256(slide.maskPath));
  assert.deepEqual(again.anomalies, slide.anomalies);
  const seed12 = await synthesizeSlide({ ...OPTS, width: 2048, height: 2048, anomalies: 2, maxAnomalySize: 300, seed: 12, out: join(other, 's12.tiff') });
  const seed13 = await synthesizeSlide({ ...OPTS, width: 2048, height: 2048, anomalies: 2, maxAnomalySize: 300, seed: 13, out: join(other, 's13.tiff') });
  assert.notEqual(sha256(seed12.path), sha256(seed13.path));
  assert.notDeepEqual(seed12.anomalies.map((a) => [a.x, a.y]), seed13.anomalies.map((a) => [a.x, a.y]));
});
