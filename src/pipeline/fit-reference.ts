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
import type { MemoryBank } from '../scoring/knn.ts';
import { knnScoresFast } from '../scoring/knn-fast.ts';
import { batchRanges, processBatch } from './batch.ts';
import { checksumInput } from './checksum.ts';
import type { TileEmbedder } from './embedder.ts';
import { planAnalysis } from './plan.ts';
import { throwIfAborted, type StageContext } from './stage.ts';

/** Upper bound on reference embeddings held before subsampling (~100 MB at 384 dims). */
export const MAX_REFERENCE_EMBEDDINGS = 65_536;
/** Patch tokens kept from all reference slides together (token banks): 50 MB at 192 dimensions. */
export const MAX_REFERENCE_TOKENS = 65_536;
/** Normal tiles scored to calibrate a token bank (evenly spread). */
const MAX_TOKEN_CALIBRATION_TILES = 256;

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
  const regionMode = params.regionSize !== null;
  // a region bank holds the 16-px cells' tokens of native regions, scored per cell as region analyses score
  const tokenMode = regionMode || params.bankEntries === 'tokens' || (params.bankEntries === 'auto' && embedder.embedTokens !== undefined);
  if (regionMode && params.bankEntries === 'tiles') throw new InvalidParameterError('regionSize builds a bank of region tokens; bankEntries \'tiles\' contradicts it');
  if (tokenMode && !embedder.embedTokens) {
    throw new InvalidParameterError(`bankEntries 'tokens' needs a model with patch tokens; '${embedder.model.name}' has none`);
  }
  const chunks: Float32Array[] = [];
  /** Token mode: where each tile's kept tokens start (entry index), for tile-level calibration. */
  const tileStarts: number[] = [];
  let total = 0;
  const sources: BankHeader['sources'] = [];
  for (const path of paths) {
    const slide = await openSlide(path);
    try {
      const { sha256 } = await checksumInput(path, ctx.signal);
      const { plan } = await planAnalysis({ slide }, params, ctx);
      if (plan.cells) {
        // Region mode: every region is encoded (a region's cells are numbered through the plan);
        // evenly spaced cells of each batch are kept, so that all slides stay within the budget.
        const stride = Math.max(1, Math.ceil(plan.cells.total / Math.floor(MAX_REFERENCE_TOKENS / paths.length)));
        let done = 0;
        for (const range of batchRanges(plan, params.batchSize)) {
          throwIfAborted(ctx.signal, 'fit-reference');
          const out = await processBatch({ slide, plan, range, embedder, bank: null }, params, ctx);
          const rows: number[] = [];
          for (let i = 0; i < out.count; i++) if ((out.start + i) % stride === 0) rows.push(i);
          const kept = new Float32Array(rows.length * dim);
          rows.forEach((i, j) => kept.set(out.embeddings.subarray(i * dim, (i + 1) * dim), j * dim));
          chunks.push(kept);
          total += rows.length;
          done += range.end - range.start;
          ctx.progress({ stage: 'encode', done, total: plan.tiles.length });
        }
        sources.push({ name: basename(path), sha256, tiles: plan.tiles.length });
        continue;
      }
      // Evenly thin a slide whose tiles would overflow the budget shared by all slides.
      const budget = Math.floor(MAX_REFERENCE_EMBEDDINGS / paths.length);
      const step = Math.max(1, Math.ceil(plan.tiles.length / budget));
      const used = plan.tiles.filter((_, i) => i % step === 0).map((t, i) => ({ ...t, index: i }));
      const thinned = { ...plan, tiles: used };
      let done = 0;
      for (const range of batchRanges(thinned, params.batchSize)) {
        throwIfAborted(ctx.signal, 'fit-reference');
        const out = await processBatch({ slide, plan: thinned, range, embedder, bank: null, withTokens: tokenMode, embedOnly: true }, params, ctx);
        if (tokenMode) {
          // Evenly spaced tokens of each tile, so that all slides together stay within the budget.
          const per = out.tokensPerTile!;
          const keepPerTile = Math.max(1, Math.min(per, Math.floor(MAX_REFERENCE_TOKENS / paths.length / used.length)));
          const kept = new Float32Array(out.count * keepPerTile * dim);
          for (let t = 0; t < out.count; t++) {
            tileStarts.push(total + t * keepPerTile);
            for (let j = 0; j < keepPerTile; j++) {
              const src = (t * per + Math.floor((j * per) / keepPerTile)) * dim;
              kept.set(out.tokens!.subarray(src, src + dim), (t * keepPerTile + j) * dim);
            }
          }
          chunks.push(kept);
          total += out.count * keepPerTile;
        } else {
          chunks.push(out.embeddings);
          total += out.count;
        }
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
  ctx.log.info(`coreset: keeping ${size} of ${total} ${tokenMode ? 'patch tokens' : 'embeddings'}`);
  const keep = greedyCoreset(all, total, dim, size, params.seed);
  const data = new Float32Array(keep.length * dim);
  keep.forEach((row, m) => data.set(all.subarray(row * dim, (row + 1) * dim), m * dim));
  const bank = { dim, count: keep.length, data };

  // Calibration from normal scores the bank has not memorised.
  const kept = new Set(keep);
  // Tile token banks score a tile by its worst token; tile embeddings and region cells (as region
  // analyses score them) each by itself: the normal entries the coreset left out, or leave-one-out.
  const normal = tokenMode && !regionMode
    ? await tokenTileScores(all, dim, tileStarts, total, bank, keep, params.k)
    : kept.size < total
      ? await knnScoresFast(bank, restOf(all, dim, total, kept), total - kept.size, params.k)
      : await knnScoresFast(bank, data, keep.length, params.k, (i) => i);
  const header: BankHeader = {
    format: 'lamina-reference-bank',
    version: 1,
    model: { name: embedder.model.name, trained: embedder.model.trained },
    embeddingSize: dim,
    count: keep.length,
    metric: 'l2',
    k: params.k,
    entries: tokenMode ? 'tokens' : 'tiles',
    calibration: fitCalibration(normal, params.calibrationZ),
    sources,
    totalEmbeddings: total,
    parameters: { ...params, reference: null },
  };
  await writeBank(outPath, header, data);
  return header;
}

/**
 * Tile-level normal scores for a token bank: each sampled tile's worst token, every token skipping
 * its own bank entry (when the coreset kept it), as analysis scores tiles.
 */
async function tokenTileScores(all: Float32Array, dim: number, tileStarts: number[], total: number, bank: MemoryBank, keep: number[], k: number): Promise<Float64Array> {
  const slotOf = new Map(keep.map((row, slot) => [row, slot]));
  const tiles = tileStarts.length;
  const n = Math.min(tiles, MAX_TOKEN_CALIBRATION_TILES);
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const t = Math.floor((j * tiles) / n);
    const from = tileStarts[t]!;
    const to = t + 1 < tiles ? tileStarts[t + 1]! : total;
    const scores = await knnScoresFast(bank, all.subarray(from * dim, to * dim), to - from, k, (i) => slotOf.get(from + i) ?? -1);
    out[j] = Math.max(...scores);
  }
  return out;
}

/** The rows of `all` not in `kept`, in order. */
function restOf(all: Float32Array, dim: number, total: number, kept: Set<number>): Float32Array {
  const rest = new Float32Array((total - kept.size) * dim);
  let r = 0;
  for (let i = 0; i < total; i++) if (!kept.has(i)) rest.set(all.subarray(i * dim, (i + 1) * dim), dim * r++);
  return rest;
}
