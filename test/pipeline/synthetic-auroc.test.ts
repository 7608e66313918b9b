/**
 * Patch scores against planted anomalies on `lamina synth` slides (all four kinds: dense nuclei,
 * stain-matched procedural morphology, real tissue, real tissue stain-matched to its surroundings),
 * with the tiny built-in encoder (CI-sized), without and with a reference bank fitted on
 * anomaly-free synthetic slides. AUROC and AUPRO are printed as test diagnostics.
 *
 * What the floors below say (measured; see docs/benchmarks.md): with UNTRAINED random-weight
 * encoders, anomalies that differ in colour and texture (dense nuclei) separate perfectly; real
 * tissue separates well with a reference bank; stain-matched anomalies whose only difference is
 * morphology do not reach the 0.95 with random features — that needs a trained encoder.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { analyzeSlide } from '../../src/pipeline/analyze.ts';
import { fitReference } from '../../src/pipeline/fit-reference.ts';
import { openEmbedder } from '../../src/pipeline/open-embedder.ts';
import { quietContext } from '../../src/pipeline/stage.ts';
import type { TileEmbedder } from '../../src/pipeline/embedder.ts';
import { synthesizeSlide } from '../../src/synth/index.ts';
import { evaluateSynth, type SynthEvaluation } from '../../bench/synth-eval.ts';

const MODEL = 'untrained-test-tiny';
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
  await fitReference(normals, parseAnalysisParams({ model: MODEL, coresetRatio: 0.25 }), quietContext(), embedder, bank);
});
after(async () => {
  await embedder.close();
  await rm(dir, { recursive: true, force: true });
});

function report(t: { diagnostic(message: string): void }, label: string, e: SynthEvaluation): void {
  const kinds = Object.entries(e.byKind).map(([k, v]) => `${k} ${v.auroc.toFixed(3)} (${v.positives})`).join(', ');
  t.diagnostic(`${label}: AUROC ${e.auroc.toFixed(3)}, AUPRO ${e.aupro.toFixed(3)}; ${e.positives} anomalous / ${e.negatives} normal tiles (${e.excluded} border tiles left out); by kind: ${kinds}`);
}

test('in-slide scoring (no reference): AUROC and AUPRO against the true mask', async (t) => {
  const out = join(dir, 'in-slide');
  await analyzeSlide(slide, parseAnalysisParams({ model: MODEL }), quietContext(), { outDir: out, embedder });
  const e = await evaluateSynth(out, slide.replace(/\.tiff$/, '.anomalies.json'));
  report(t, 'in-slide', e);
  assert.ok(e.positives >= 20 && e.negatives >= 50, 'enough tiles on both sides to measure');
  assert.ok(e.byKind['dense-nuclei']!.auroc >= 0.95, `dense nuclei ${e.byKind['dense-nuclei']!.auroc}`);
  assert.ok(e.auroc > 0.6, `overall ${e.auroc}`);
});

test('with a reference bank fitted on anomaly-free slides: AUROC and AUPRO against the true mask', async (t) => {
  const out = join(dir, 'bank');
  const result = await analyzeSlide(slide, parseAnalysisParams({ model: MODEL, reference: bank }), quietContext(), { outDir: out, embedder });
  assert.equal(result.scorer.method, 'knn-bank');
  const e = await evaluateSynth(out, slide.replace(/\.tiff$/, '.anomalies.json'));
  report(t, 'reference bank', e);
  assert.ok(e.byKind['dense-nuclei']!.auroc >= 0.95, `dense nuclei ${e.byKind['dense-nuclei']!.auroc}`);
  assert.ok(e.byKind['real-tissue']!.auroc >= 0.85, `real tissue ${e.byKind['real-tissue']!.auroc}`);
  assert.ok(e.auroc > 0.7, `overall ${e.auroc}`);
});
