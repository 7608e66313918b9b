/**
 * `fitReference`: a PatchCore-style reference bank from normal slides. Every slide is planned and
 * encoded with the same stages as an analysis; the embeddings are subsampled by greedy coreset
 * and written with the calibration of normal scores: the kNN distances of the reference
 * embeddings left out of the coreset (or, when all are kept, leave-one-out distances).
 */
import { basename } from 'node:path';
import type { AnalysisParams } from '../../pipelines/anomaly.ts';
import { InvalidParameterError } from '../errors.ts';
import { openSlide } from '../readers/registry.ts';
import { writeBank, type BankHeader } from '../scoring/bank.ts';
import { fitCalibration } from '../scoring/calibration.ts';
import { greedyCoreset } from '../scoring/coreset.ts';
import { knnScores } from '../scoring/knn.ts';
import { batchRanges, processBatch } from './batch.ts';
import { checksumInput } from './checksum.ts';
import type { TileEmbedder } from './embedder.ts';
import { planAnalysis } from './plan.ts';
import { throwIfAborted, type StageContext } from './stage.ts';

/** Upper bound on reference embeddings held before subsampling (~100 MB at 384 dims). */
export const MAX_REFERENCE_EMBEDDINGS = 65_536;

/**
 * Fits and writes a bank; returns its header.
 * @example await fitReference(['normal1.svs', 'normal2.svs'], params, ctx, embedder, 'bank.lmb');
 */
export async function fitReference(
  paths: readonly string[],
  params: AnalysisParams,
  ctx: StageContext,
  embedder: TileEmbedder,
  outPath: string,
): Promise<BankHeader> {
  if (paths.length === 0) throw new InvalidParameterError('fit-reference needs at least one slide');
  const dim = embedder.model.embeddingSize;
  const chunks: Float32Array[] = [];
  let total = 0;
  const sources: BankHeader['sources'] = [];
  for (const path of paths) {
    const slide = await openSlide(path);
    try {
      const { sha256 } = await checksumInput(path, ctx.signal);
      const { plan } = await planAnalysis({ slide }, params, ctx);
      // Evenly thin a slide whose tiles would overflow the budget shared by all slides.
      const budget = Math.floor(MAX_REFERENCE_EMBEDDINGS / paths.length);
      const step = Math.max(1, Math.ceil(plan.tiles.length / budget));
      const used = plan.tiles.filter((_, i) => i % step === 0).map((t, i) => ({ ...t, index: i }));
      const thinned = { ...plan, tiles: used };
      let done = 0;
      for (const range of batchRanges(thinned, params.batchSize)) {
        throwIfAborted(ctx.signal, 'fit-reference');
        const out = await processBatch({ slide, plan: thinned, range, embedder, bank: null }, params, ctx);
        chunks.push(out.embeddings);
        total += out.count;
        done += out.count;
        ctx.progress({ stage: 'encode', done, total: used.length });
      }
      sources.push({ name: basename(path), sha256, tiles: used.length });
    } finally {
      await slide.close();
    }
  }
  const all = new Float32Array(total * dim);
  let offset = 0;
  for (const c of chunks) { all.set(c, offset); offset += c.length; }

  const size = Math.min(total, params.coresetMax, Math.max(1, Math.ceil(total * params.coresetRatio)));
  ctx.log.info(`coreset: keeping ${size} of ${total} embeddings`);
  const keep = greedyCoreset(all, total, dim, size, params.seed);
  const data = new Float32Array(keep.length * dim);
  keep.forEach((row, m) => data.set(all.subarray(row * dim, (row + 1) * dim), m * dim));
  const bank = { dim, count: keep.length, data };

  // Calibration from normal scores the bank has not memorised.
  const kept = new Set(keep);
  let normal: Float64Array;
  if (kept.size < total) {
    const rest = new Float32Array((total - kept.size) * dim);
    let r = 0;
    for (let i = 0; i < total; i++) if (!kept.has(i)) rest.set(all.subarray(i * dim, (i + 1) * dim), dim * r++);
    normal = knnScores(bank, rest, r, params.k);
  } else {
    normal = knnScores(bank, data, keep.length, params.k, (i) => i);
  }
  const header: BankHeader = {
    format: 'lamina-reference-bank',
    version: 1,
    model: { name: embedder.model.name, trained: embedder.model.trained },
    embeddingSize: dim,
    count: keep.length,
    metric: 'l2',
    k: params.k,
    calibration: fitCalibration(normal, params.calibrationZ),
    sources,
    totalEmbeddings: total,
    parameters: { ...params, reference: null },
  };
  await writeBank(outPath, header, data);
  return header;
}
