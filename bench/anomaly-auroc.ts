/**
 * `npm run bench:anomaly -- [--model lamina-vit-tiny-dino] [--seed 5]`: patch-level AUROC and AUPRO of
 * `lamina analyze` against the true masks of `lamina synth` slides (all four anomaly kinds), with
 * in-slide scoring and with a reference bank fitted on two anomaly-free slides of other seeds —
 * the test set of test/pipeline/synthetic-auroc.test.ts, for models too slow for CI (ViT-S/16 on
 * two cores). Slides are cached in /tmp/lamina-bench (LAMINA_BENCH_DIR).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { analysisDefaults, parseAnalysisParams } from '../pipelines/anomaly.ts';
import { analyzeSlide } from '../src/pipeline/analyze.ts';
import { fitReference } from '../src/pipeline/fit-reference.ts';
import { openEmbedder } from '../src/pipeline/open-embedder.ts';
import { quietContext } from '../src/pipeline/stage.ts';
import { synthesizeSlide } from '../src/synth/index.ts';
import { evaluateSynth } from './synth-eval.ts';

const dir = process.env.LAMINA_BENCH_DIR ?? '/tmp/lamina-bench';
const modelArg = process.argv.indexOf('--model');
const model = modelArg > 0 ? process.argv[modelArg + 1]! : analysisDefaults.model;
const seedArg = process.argv.indexOf('--seed');
const seed = seedArg > 0 ? Number(process.argv[seedArg + 1]) : 5;
// --params '{"scorer":"knn","k":3,"stride":112}': analysis parameters to compare against the defaults.
const paramsArg = process.argv.indexOf('--params');
const extra = paramsArg > 0 ? JSON.parse(process.argv[paramsArg + 1]!) as Record<string, unknown> : {};
const tag = paramsArg > 0 ? `-${process.argv[paramsArg + 1]!.replace(/[^\w]/g, '')}` : '';

await mkdir(dir, { recursive: true });
// Seed 5 keeps its historical file name so earlier caches stay valid.
const slide = join(dir, seed === 5 ? 'auroc-anomalies.tiff' : `auroc-anomalies-s${seed}.tiff`);
const normals = [join(dir, 'auroc-normal-1.tiff'), join(dir, 'auroc-normal-2.tiff')];
if (!existsSync(slide)) await synthesizeSlide({ width: 5120, height: 5120, out: slide, anomalies: 8, seed, minAnomalySize: 600, maxAnomalySize: 950 });
for (const [i, path] of normals.entries()) if (!existsSync(path)) await synthesizeSlide({ width: 3072, height: 3072, out: path, anomalies: 0, seed: 11 + i });

const embedder = await openEmbedder(model, 'cpu');
const started = performance.now();
const bank = join(dir, `auroc-bank-${model.replace(/[^\w.-]/g, '_')}${tag}.lmb`);
await fitReference(normals, parseAnalysisParams({ model, coresetRatio: 0.25, ...extra }), quietContext(), embedder, bank);
const lines = [`model ${model} (trained: ${embedder.model.trained}); slide 5120² seed ${seed}, 8 anomalies 600–950 px; bank from two 3072² anomaly-free slides (seeds 11, 12); params ${JSON.stringify(extra)}`];
for (const [label, reference] of [['in-slide', null], ['reference bank', bank]] as const) {
  const out = join(dir, `auroc-${label.replace(' ', '-')}-${model.replace(/[^\w.-]/g, '_')}-s${seed}${tag}`);
  const result = await analyzeSlide(slide, parseAnalysisParams({ ...extra, model, reference }), quietContext(), { outDir: out, embedder });
  const e = await evaluateSynth(out, slide.replace(/\.tiff$/, '.anomalies.json'));
  const kinds = Object.entries(e.byKind).map(([k, v]) => `${k} ${v.auroc.toFixed(3)} (${v.positives})`).join(', ');
  lines.push(`| ${label} (${result.scorer.method}) | ${e.auroc.toFixed(3)} | ${e.aupro.toFixed(3)} | ${e.positives}/${e.negatives} | ${kinds} |`);
}
await embedder.close();
lines.push(`(${((performance.now() - started) / 1000).toFixed(0)} s)`);
console.log(lines.join('\n'));
