/**
 * Turns all of a slide's embeddings into raw anomaly scores and their calibration, for the four
 * combinations of scorer and reference:
 * - `knn-bank`: kNN distance to the reference bank (scored per batch); calibration from the bank.
 * - `mahalanobis-bank`: Mahalanobis fitted on the bank's embeddings; calibrated on the bank's own distances.
 * - `mahalanobis` (in-slide, the default without a bank): robust Mahalanobis fitted on an evenly
 *   spread sample of the slide's embeddings; calibrated on the slide's own scores.
 * - `knn-self`: kNN distance to a greedy coreset of the slide's sample, a tile never matching itself;
 *   calibrated on the slide's own scores.
 * - `mahalanobis-tokens` (in-slide, the default when the encoder gives patch tokens): the pooled
 *   `mahalanobis` score joined with each tile's token statistic from its batch
 *   (`fuseTwoScales`: max of robust z-scores, the token one two-sided); calibrated on the slide's
 *   own scores.
 */
import type { AnalysisParams } from '../../pipelines/anomaly.ts';
import { UnprocessableError } from '../errors.ts';
import type { ReferenceBank } from '../scoring/bank.ts';
import { fitCalibration, type Calibration } from '../scoring/calibration.ts';
import { greedyCoreset } from '../scoring/coreset.ts';
import type { MemoryBank } from '../scoring/knn.ts';
import { knnScoresFast } from '../scoring/knn-fast.ts';
import { createKnnScorer } from '../scoring/knn-gpu.ts';
import { fitMahalanobis, mahalanobisScores } from '../scoring/mahalanobis.ts';
import { fuseTwoScales } from '../scoring/token-gaussian.ts';
import type { BatchOutput } from './batch.ts';
import { throwIfAborted } from './stage.ts';

export type ScorerMethod = 'knn-bank' | 'mahalanobis-bank' | 'mahalanobis' | 'mahalanobis-tokens' | 'knn-self';

/** What result.json records about scoring. */
export interface ScorerSummary {
  method: ScorerMethod;
  k: number | null;
  /** Ledoit–Wolf shrinkage of the Mahalanobis covariance. */
  shrinkage: number | null;
  /** Embeddings the in-slide scorer was fitted on. */
  fitSamples: number | null;
  calibration: Calibration;
}

/**
 * Which method the parameters select; without a bank, `tokenStats` says whether the batches carry
 * token statistics (`tokenStatsInBatch`).
 */
export function scorerMethod(params: AnalysisParams, hasBank: boolean, tokenStats = false): ScorerMethod {
  if (hasBank) {
    if (params.scorer === 'mahalanobis-tokens') throw new UnprocessableError("scorer 'mahalanobis-tokens' is the in-slide scorer; with a reference bank use 'knn' or 'auto'");
    return params.scorer === 'mahalanobis' ? 'mahalanobis-bank' : 'knn-bank';
  }
  if (params.scorer === 'knn') return 'knn-self';
  if (params.scorer === 'mahalanobis-tokens' && !tokenStats) throw new UnprocessableError("scorer 'mahalanobis-tokens' needs token statistics from the batches, and these batches have none");
  return tokenStats && params.scorer !== 'mahalanobis' ? 'mahalanobis-tokens' : 'mahalanobis';
}

/** Evenly spread, deterministic tile indices used to fit an in-slide scorer. */
export function fitSampleIndices(total: number, maxSamples: number): number[] {
  const n = Math.min(total, maxSamples);
  return Array.from({ length: n }, (_, j) => Math.floor((j * total) / n));
}

/**
 * Checks that batch outputs cover items 0 … total − 1 exactly once (`unit` names them in errors):
 * `mark` each output as it arrives, `checkComplete` after the last.
 */
export function batchCoverage(total: number, unit: string) {
  const seen = new Uint8Array(total);
  const mark = (out: BatchOutput) => {
    if (out.start + out.count > total) throw new UnprocessableError(`batch ${out.start}+${out.count} is outside the plan's ${total} ${unit}s`);
    for (let i = 0; i < out.count; i++) {
      if (seen[out.start + i]) throw new UnprocessableError(`${unit} ${out.start + i} appears in two batch outputs`);
      seen[out.start + i] = 1;
    }
  };
  const checkComplete = () => {
    const missing = seen.indexOf(0);
    if (missing >= 0) throw new UnprocessableError(`${unit} ${missing} has no batch output (${seen.reduce((a, b) => a + b, 0)} of ${total} present)`);
  };
  return { mark, checkComplete };
}

/**
 * Pass 1 of an in-slide scorer: reads every batch once, checks that they cover the plan, and
 * gathers the embeddings of {@link fitSampleIndices}' evenly spread sample (`onBatch` sees each output).
 */
export async function gatherFitSample(
  total: number, batches: () => AsyncIterable<BatchOutput>, maxSamples: number, signal: AbortSignal, unit: string,
  onBatch?: (out: BatchOutput) => void,
): Promise<{ sampleIndices: number[]; sample: Float32Array; dim: number }> {
  const { mark, checkComplete } = batchCoverage(total, unit);
  const sampleIndices = fitSampleIndices(total, maxSamples);
  const slot = new Map<number, number>(sampleIndices.map((item, j) => [item, j]));
  let dim = 0;
  let sample = new Float32Array(0);
  for await (const out of batches()) {
    throwIfAborted(signal, 'scoring');
    mark(out);
    onBatch?.(out);
    if (dim === 0) {
      dim = out.dim;
      sample = new Float32Array(sampleIndices.length * dim);
    }
    for (let i = 0; i < out.count; i++) {
      const j = slot.get(out.start + i);
      if (j !== undefined) sample.set(out.embeddings.subarray(i * dim, (i + 1) * dim), j * dim);
    }
  }
  checkComplete();
  return { sampleIndices, sample, dim };
}

/**
 * Raw scores for every tile (plan order) and the calibration.
 * @param batches re-iterable: read once to fit (in-slide scorers) and once to score.
 */
export async function scoreSlide(
  total: number,
  batches: () => AsyncIterable<BatchOutput>,
  bank: ReferenceBank | null,
  params: AnalysisParams,
  signal: AbortSignal,
): Promise<{ raw: Float64Array; summary: ScorerSummary }> {
  let method = scorerMethod(params, bank !== null, params.scorer === 'mahalanobis-tokens');
  const raw = new Float64Array(total).fill(NaN);
  const { mark, checkComplete } = batchCoverage(total, 'tile');

  if (method === 'knn-bank') {
    // engine webgpu: the bank's nearest-neighbour search runs on the GPU kNN kernels (CPU fallback inside)
    const gpuKnn = params.engine === 'webgpu' ? await createKnnScorer(bank!, { engine: 'webgpu' }) : undefined;
    try {
      for await (const out of batches()) {
        throwIfAborted(signal, 'scoring');
        mark(out);
        if (!out.rawScores && bank!.header.entries === 'tokens') throw new UnprocessableError('a token reference bank is scored in the batches; this batch has no scores');
        const scores = out.rawScores ?? (gpuKnn ? await gpuKnn.score(out.embeddings, out.count, params.k) : await knnScoresFast(bank!, out.embeddings, out.count, params.k));
        raw.set(scores, out.start);
      }
    } finally {
      await gpuKnn?.close();
    }
    checkComplete();
    const c = bank!.header.calibration;
    return { raw, summary: { method, k: params.k, shrinkage: null, fitSamples: null, calibration: { ...c, z: params.calibrationZ } } };
  }

  if (method === 'mahalanobis-bank') {
    if (bank!.header.entries === 'tokens') throw new UnprocessableError('a token reference bank is scored by kNN only (scorer knn or auto), not mahalanobis');
    const model = fitMahalanobis(bank!.data, bank!.count, bank!.dim);
    const calibration = fitCalibration(mahalanobisScores(model, bank!.data, bank!.count), params.calibrationZ);
    for await (const out of batches()) {
      throwIfAborted(signal, 'scoring');
      mark(out);
      raw.set(mahalanobisScores(model, out.embeddings, out.count), out.start);
    }
    checkComplete();
    return { raw, summary: { method, k: null, shrinkage: round6(model.shrinkage), fitSamples: model.samples, calibration } };
  }

  // In-slide: pass 1 gathers the fit sample, pass 2 scores.
  // Token statistics travel as the batches' raw scores: all batches have them or none.
  let withStats = 0;
  let batchCount = 0;
  const { sampleIndices, sample, dim } = await gatherFitSample(total, batches, params.maxFitSamples, signal, 'tile', (out) => {
    batchCount++;
    if (out.rawScores) withStats++;
  });
  if (withStats !== 0 && withStats !== batchCount) throw new UnprocessableError(`${withStats} of ${batchCount} batch outputs carry token statistics; all or none should`);
  method = scorerMethod(params, false, withStats > 0);
  const tokenStats = method === 'mahalanobis-tokens' ? new Float64Array(total) : null;
  const n = sampleIndices.length;
  let scoreBatch: (out: BatchOutput) => Float64Array | Promise<Float64Array>;
  let summary: Omit<ScorerSummary, 'calibration'>;
  if (method === 'mahalanobis' || method === 'mahalanobis-tokens') {
    const model = fitMahalanobis(sample, n, dim);
    scoreBatch = (out) => mahalanobisScores(model, out.embeddings, out.count);
    summary = { method, k: null, shrinkage: round6(model.shrinkage), fitSamples: n };
  } else {
    const size = Math.min(n, params.coresetMax, Math.max(1, Math.ceil(n * params.coresetRatio)));
    const keep = greedyCoreset(sample, n, dim, size, params.seed);
    const memory: MemoryBank = { dim, count: keep.length, data: new Float32Array(keep.length * dim) };
    keep.forEach((j, m) => memory.data.set(sample.subarray(j * dim, (j + 1) * dim), m * dim));
    const bankSlotOfTile = new Map<number, number>(keep.map((j, m) => [sampleIndices[j]!, m]));
    scoreBatch = (out) => knnScoresFast(memory, out.embeddings, out.count, params.k, (i) => bankSlotOfTile.get(out.start + i) ?? -1);
    summary = { method, k: params.k, shrinkage: null, fitSamples: n };
  }
  for await (const out of batches()) {
    throwIfAborted(signal, 'scoring');
    raw.set(await scoreBatch(out), out.start);
    if (tokenStats) tokenStats.set(out.rawScores!, out.start);
  }
  if (tokenStats) raw.set(fuseTwoScales(raw, tokenStats));
  return { raw, summary: { ...summary, calibration: fitCalibration(raw, params.calibrationZ) } };
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}
