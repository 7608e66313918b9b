/**
 * Patch scores against planted anomalies on `lamina synth` slides (all four kinds: dense nuclei,
 * stain-matched procedural morphology, real tissue, real tissue stain-matched to its surroundings),
 * with the DEFAULT encoder (the trained DINO ViT-Tiny/16 of models/, issue 9), without and with a
 * reference bank fitted on anomaly-free synthetic slides, and the untrained tiny built-in beside it
 * on the stain-matched real-tissue kind. AUROC and AUPRO are printed as test diagnostics.
 *
 * What the floors below say (measured on seeds 5 and 7; see docs/benchmarks.md, issue 3/9
 * section): the trained encoder separates dense nuclei, real tissue and stain-matched real tissue
 * (texture only) at AUROC >= 0.95 with a reference bank (>= 0.9 in-slide). The overall AUROC
 * reaches the 0.95 on both seeds with the default token bank (PatchCore on patch tokens)
 * and in-slide with the default 'mahalanobis-tokens' scorer (pooled robust Mahalanobis joined with
 * each tile's token statistic against a robust Gaussian of the slide's own tokens). Pooled
 * Mahalanobis alone left the procedural "morphology" kind (stain-matched synthetic texture) at
 * 0.5-0.7 and the in-slide AUROC near 0.9.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analysisDefaults, parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { analyzeSlide } from '../../src/pipeline/analyze.ts';
import { fitReference } from '../../src/pipeline/fit-reference.ts';
import { openEmbedder } from '../../src/pipeline/open-embedder.ts';
import { quietContext } from '../../src/pipeline/stage.ts';
import type { TileEmbedder } from '../../src/pipeline/embedder.ts';
import { synthesizeSlide } from '../../src/synth/index.ts';
import { evaluateSynth, type SynthEvaluation } from '../../bench/synth-eval.ts';

const MODEL = analysisDefaults.model;
const UNTRAINED = 'untrained-test-tiny';
const sidecar = () => slide.replace(/\.tiff$/, '.anomalies.json');
let inSlide: SynthEvaluation;
let dir: string;
let embedder: TileEmbedder;
let slide: string;
let bank: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lamina-auroc-'));
  embedder = await openEmbedder(MODEL, 'cpu');
  slide = join(dir, 'anomalies.tiff');
  await synthesizeSlide({ width: 5120, height: 5120, out: slide, anomalies: 8, seed: 5, minAnomalySize: 600, maxAnomalySize: 950, workers: 0 });
  const normals = [join(dir, 'normal-1.tiff'), join(dir, 'normal-2.tiff')];
  await synthesizeSlide({ width: 3072, height: 3072, out: normals[0]!, anomalies: 0, seed: 11, workers: 0 });
  await synthesizeSlide({ width: 3072, height: 3072, out: normals[1]!, anomalies: 0, seed: 12, workers: 0 });
  bank = join(dir, 'bank.lmb');
  const header = await fitReference(normals, parseAnalysisParams({ model: MODEL }), quietContext(), embedder, bank);
  assert.equal(header.entries, 'tokens', 'the default bank holds patch tokens (the model has them)');
});
after(async () => {
  await embedder.close();
  await rm(dir, { recursive: true, force: true });
});

function report(t: { diagnostic(message: string): void }, label: string, e: SynthEvaluation): void {
  const kinds = Object.entries(e.byKind).map(([k, v]) => `${k} ${v.auroc.toFixed(3)} (${v.positives})`).join(', ');
  t.diagnostic(`${label}: AUROC ${e.auroc.toFixed(3)}, AUPRO ${e.aupro.toFixed(3)}; ${e.positives} anomalous / ${e.negatives} normal tiles (${e.excluded} border tiles left out); by kind: ${kinds}`);
}

test('the default encoder is the trained one', () => {
  assert.equal(embedder.model.trained, true, `${MODEL} should be a trained model`);
});

test('in-slide scoring (no reference): AUROC and AUPRO against the true mask', async (t) => {
  const out = join(dir, 'in-slide');
  const result = await analyzeSlide(slide, parseAnalysisParams({ model: MODEL }), quietContext(), { outDir: out, embedder });
  assert.equal(result.scorer.method, 'mahalanobis-tokens', 'the in-slide default with an encoder that gives patch tokens');
  const e = inSlide = await evaluateSynth(out, sidecar());
  report(t, 'in-slide', e);
  assert.ok(e.positives >= 20 && e.negatives >= 50, 'enough tiles on both sides to measure');
  for (const kind of ['dense-nuclei', 'real-tissue']) {
    assert.ok(e.byKind[kind]!.positives > 0, `${kind} planted`);
    assert.ok(e.byKind[kind]!.auroc >= 0.95, `${kind} ${e.byKind[kind]!.auroc}`);
  }
  // Floors are what holds on both seeds (bench: seed 5 | seed 7), not this seed's figures.
  assert.ok(e.byKind['real-stain-matched']!.auroc >= 0.9, `stain-matched real tissue ${e.byKind['real-stain-matched']!.auroc}`);
  assert.ok(e.byKind.morphology!.auroc >= 0.85, `morphology ${e.byKind.morphology!.auroc}`);
  assert.ok(e.auroc >= 0.95, `overall ${e.auroc}`);
  assert.ok(e.aupro >= 0.85, `AUPRO ${e.aupro}`);
});

test('with a reference bank fitted on anomaly-free slides: AUROC and AUPRO against the true mask', async (t) => {
  const out = join(dir, 'bank');
  const result = await analyzeSlide(slide, parseAnalysisParams({ model: MODEL, reference: bank }), quietContext(), { outDir: out, embedder });
  assert.equal(result.scorer.method, 'knn-bank');
  assert.equal(result.model.trained, true);
  const e = await evaluateSynth(out, sidecar());
  report(t, 'reference bank', e);
  // Token bank (PatchCore on patch tokens): 0.985 / AUPRO 0.944 on this seed, 0.965 / 0.865 on seed 7.
  for (const kind of ['dense-nuclei', 'real-tissue', 'real-stain-matched']) {
    assert.ok(e.byKind[kind]!.auroc >= 0.95, `${kind} ${e.byKind[kind]!.auroc}`);
  }
  assert.ok(e.byKind.morphology!.auroc >= 0.8, `morphology ${e.byKind.morphology!.auroc}`);
  assert.ok(e.auroc >= 0.95, `overall ${e.auroc}`);
  assert.ok(e.aupro >= 0.8, `AUPRO ${e.aupro}`);
});

test('stain-matched real tissue: the trained default separates it better than an untrained encoder', async (t) => {
  const untrained = await openEmbedder(UNTRAINED, 'cpu');
  try {
    const out = join(dir, 'untrained');
    const result = await analyzeSlide(slide, parseAnalysisParams({ model: UNTRAINED }), quietContext(), { outDir: out, embedder: untrained });
    assert.equal(result.model.trained, false, 'the untrained built-in says so in result.json');
    const e = await evaluateSynth(out, sidecar());
    report(t, `untrained ${UNTRAINED} in-slide`, e);
    const trained = inSlide.byKind['real-stain-matched']!.auroc;
    assert.ok(trained > e.byKind['real-stain-matched']!.auroc, `trained ${trained} vs untrained ${e.byKind['real-stain-matched']!.auroc}`);
  } finally {
    await untrained.close();
  }
});
