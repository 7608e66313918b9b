/**
 * `node --import tsx bench/token-patchcore.ts MODEL SEED RESULT_DIR`: an experiment, not yet a
 * pipeline scorer — PatchCore on patch TOKENS. Each tile's score is the largest 1-NN distance of
 * any of its patch tokens to a token bank (greedy coreset, 10 % capped at 4096, of the tokens of
 * the two anomaly-free slides of bench/anomaly-auroc.ts). Tiles and their positions come from
 * RESULT_DIR/tiles.csv of a `bench:anomaly` run on the same seed (run that first; slides are in
 * /tmp/lamina-bench), and the scores are evaluated against the true mask like the pipeline's.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { parseAnalysisParams } from '../pipelines/anomaly.ts';
import { openSlide } from '../src/readers/registry.ts';
import { planAnalysis } from '../src/pipeline/plan.ts';
import { quietContext } from '../src/pipeline/stage.ts';
import { resolveModel } from '../src/encoder/model-store.ts';
import { OrtEncoder } from '../src/encoder/ort-encoder.ts';
import { preprocessTiles } from '../src/encoder/preprocess.ts';
import { greedyCoreset } from '../src/scoring/coreset.ts';
import { evaluateSynth } from './synth-eval.ts';

const [model, seed, resDir] = [process.argv[2]!, +process.argv[3]!, process.argv[4]!];
const B = process.env.LAMINA_BENCH_DIR ?? '/tmp/lamina-bench';
const loc = await resolveModel(model);
const enc = await OrtEncoder.create(loc, { device: 'cpu' });
const m = enc.manifest; const d = m.embeddingDim;
async function tokensOf(path: string, rects: { x: number; y: number; width: number; height: number }[]) {
  const slide = await openSlide(path);
  const out: Float32Array[] = [];
  for (let i = 0; i < rects.length; i += 16) {
    const imgs = await Promise.all(rects.slice(i, i + 16).map((r) => slide.readRegion(r.x, r.y, 0, r.width, r.height)));
    const px = await preprocessTiles(imgs, m);
    const r = await enc.embed(px, imgs.length, { tokens: true });
    out.push(r.tokens!);
  }
  await slide.close();
  const all = new Float32Array(out.reduce((a, t) => a + t.length, 0)); let o = 0; for (const t of out) { all.set(t, o); o += t.length; }
  return all;
}
const T = (m.inputSize / m.patchSize) ** 2;
const params = parseAnalysisParams({ model });
const normTok: Float32Array[] = [];
for (const s of [11, 12]) {
  const path = `${B}/auroc-normal-${s - 10}.tiff`;
  const slide = await openSlide(path);
  const plan = await planAnalysis({ slide }, params, quietContext());
  await slide.close();
  normTok.push(await tokensOf(path, plan.plan.tiles));
}
const nt = new Float32Array(normTok[0]!.length + normTok[1]!.length); nt.set(normTok[0]!); nt.set(normTok[1]!, normTok[0]!.length);
const nCount = nt.length / d;
const csize = Math.min(4096, Math.round(nCount * 0.1));
const idx = greedyCoreset(nt, nCount, d, csize, 0);
const bank = new Float32Array(csize * d); idx.forEach((j, i) => bank.set(nt.subarray(j * d, (j + 1) * d), i * d));
const bn = new Float64Array(csize); for (let j = 0; j < csize; j++) { let s = 0; for (let k = 0; k < d; k++) s += bank[j * d + k]! ** 2; bn[j] = s; }
const slidePath = seed === 5 ? `${B}/auroc-anomalies.tiff` : `${B}/auroc-anomalies-s${seed}.tiff`;
const csv = (await readFile(`${resDir}/tiles.csv`, 'utf8')).trim().split('\n');
const head = csv[0]!.split(','); const at = (n: string) => head.indexOf(n);
const rects = csv.slice(1).map((l) => { const f = l.split(','); return { x: +f[at('x')]!, y: +f[at('y')]!, width: +f[at('width')]!, height: +f[at('height')]! }; });
const tok = await tokensOf(slidePath, rects);
const tileScore = (agg: 'max' | 'top') => rects.map((_, t) => {
  const ds: number[] = [];
  for (let p = 0; p < T; p++) {
    const q = (t * T + p) * d; let qn = 0; for (let k = 0; k < d; k++) qn += tok[q + k]! ** 2;
    let best = Infinity;
    for (let j = 0; j < csize; j++) { let dot = 0; const b = j * d; for (let k = 0; k < d; k++) dot += tok[q + k]! * bank[b + k]!; const v = qn - 2 * dot + bn[j]!; if (v < best) best = v; }
    ds.push(Math.sqrt(Math.max(0, best)));
  }
  ds.sort((a, b) => b - a);
  return agg === 'max' ? ds[0]! : ds.slice(0, 10).reduce((a, b) => a + b, 0) / 10;
});
const mx = tileScore('max');
for (const [name, sc] of [['token-max', mx]] as const) {
  const dir = `${B}/token-${model}-s${seed}-${name}`; await mkdir(dir, { recursive: true });
  const lines = [csv[0]!, ...csv.slice(1).map((l, i) => { const f = l.split(','); f[at('raw_score')] = String(sc[i]); return f.join(','); })];
  await writeFile(`${dir}/tiles.csv`, lines.join('\n'));
  const e = await evaluateSynth(dir, slidePath.replace(/\.tiff$/, '.anomalies.json'));
  console.log(`${model} seed ${seed} ${name} bank(${csize} tokens of ${nCount}): AUROC ${e.auroc.toFixed(3)} AUPRO ${e.aupro.toFixed(3)} | ${Object.entries(e.byKind).map(([k, v]) => `${k} ${v.auroc.toFixed(3)}`).join(', ')}`);
}
await enc.close();
