/**
 * The per-batch stage (a queue's child job): read a range of planned tiles, embed them, and — when
 * a reference bank is used with the kNN scorer — score them. Without a bank, the in-slide token
 * scorer ('mahalanobis-tokens') gives each tile its token statistic here, against the slide's token
 * model (slide-token-model.ts); the pooled in-slide fit needs every tile's embedding first, so the
 * final raw scores are made in `finishAnalysis`.
 *
 * A batch output has a stable binary form (`encodeBatchOutput`) so a worker can write it
 * atomically under a key derived from (analysis, start) and a retried batch overwrites, never
 * duplicates.
 */
import type { RgbImage, Slide } from '../readers/types.ts';
import type { AnalysisParams } from '../../pipelines/anomaly.ts';
import { CorruptSlideError, LaminaError, UnprocessableError } from '../errors.ts';
import type { PlannedTile, TilePlan } from '../tiling/tile-plan.ts';
import { readConcurrency, readTiles } from '../tiling/tile-reader.ts';
import { knnScoresFast } from '../scoring/knn-fast.ts';
import { tileMaxTokenScores } from '../scoring/token-scores.ts';
import type { ReferenceBank } from '../scoring/bank.ts';
import type { EmbedTimings, TileEmbedder } from './embedder.ts';
import { throwIfAborted, type Stage } from './stage.ts';
import { slideTokenModel } from './slide-token-model.ts';
import { tokenDistancesParallel } from './token-score-pool.ts';
import { gpuTokenDistances, tokenScoreOnGpu } from './token-score-gpu.ts';
import { topTokenMeans } from '../scoring/token-gaussian.ts';
import type { MahalanobisModel } from '../scoring/mahalanobis.ts';
import { processRegionBatch } from './region-batch.ts';
import { regionsPerBatch } from '../tiling/region-plan.ts';

/** A half-open range of `plan.tiles` indices. JSON. */
export interface TileRange {
  start: number;
  end: number;
}

/** Input of `processBatch`. */
export interface BatchInput {
  slide: Slide;
  plan: TilePlan;
  range: TileRange;
  embedder: TileEmbedder;
  /** The loaded reference bank, when the analysis has one. */
  bank: ReferenceBank | null;
  /** Return the patch tokens too (fit-reference of a token bank). */
  withTokens?: boolean;
  /** Embed only, no in-slide token statistic (fit-reference). */
  embedOnly?: boolean;
}

/** Output of `processBatch`: embeddings (`count × dim`) and raw scores when already known. */
export interface BatchOutput {
  start: number;
  count: number;
  dim: number;
  embeddings: Float32Array;
  /**
   * Raw kNN distances to the bank; without a bank, the in-slide token statistic (mean distance of
   * each tile's most distant tokens to the slide's token model) that `finishAnalysis` joins with
   * the pooled score; null when all scoring happens in `finishAnalysis`.
   */
  rawScores: Float64Array | null;
  /** Patch tokens (`count × tokensPerTile × dim`), only when asked for (`withTokens`; not in the binary form). */
  tokens?: Float32Array;
  tokensPerTile?: number;
  /** Milliseconds spent reading tiles, embedding and scoring, the embedding split where known (not part of the binary form). */
  timings?: { read: number; embed: number; score: number; detail?: EmbedTimings };
}

/**
 * Splits a plan into batch ranges of `batchSize` tiles, in plan (read) order.
 * @example batchRanges(plan, 32) // [{start: 0, end: 32}, …]
 */
export function batchRanges(plan: TilePlan, batchSize: number): TileRange[] {
  const ranges: TileRange[] = [];
  if (plan.cells) batchSize = regionsPerBatch(plan.cells.regionSize, batchSize); // region mode: batchSize × 224² px
  for (let start = 0; start < plan.tiles.length; start += batchSize) {
    ranges.push({ start, end: Math.min(plan.tiles.length, start + batchSize) });
  }
  return ranges;
}

/** True when batches score against the bank themselves (kNN scorer with a bank). */
export function scoresInBatch(params: AnalysisParams, bank: ReferenceBank | null): boolean {
  return bank !== null && (params.scorer === 'auto' || params.scorer === 'knn');
}

/**
 * True when batches compute the in-slide token statistic: no bank, scorer 'mahalanobis-tokens',
 * or 'auto' with an encoder that gives patch tokens.
 * @throws UnprocessableError for 'mahalanobis-tokens' with an encoder without patch tokens.
 */
export function tokenStatsInBatch(params: AnalysisParams, bank: ReferenceBank | null, embedder: TileEmbedder): boolean {
  if (bank !== null) return false;
  if (params.scorer === 'mahalanobis-tokens' && !embedder.embedTokens) {
    throw new UnprocessableError(`encoder '${embedder.model.name}' gives no patch tokens, which scorer 'mahalanobis-tokens' needs (use 'mahalanobis')`);
  }
  return params.scorer === 'mahalanobis-tokens' || (params.scorer === 'auto' && embedder.embedTokens !== undefined);
}

/** Stage: encode (and, with a bank, score) one range of tiles. */
export const processBatch: Stage<BatchInput, BatchOutput, AnalysisParams> = async (input, params, ctx) => {
  if (input.plan.cells) return processRegionBatch(input, params, ctx); // region mode (issue 7)
  const { slide, plan, range, embedder, bank } = input;
  if (!(range.start >= 0 && range.end <= plan.tiles.length && range.start < range.end)) {
    throw new UnprocessableError(`tile range ${range.start}..${range.end} is outside the plan's ${plan.tiles.length} tiles`);
  }
  throwIfAborted(ctx.signal, 'batch');
  const tiles = plan.tiles.slice(range.start, range.end);
  const t0 = performance.now();
  const taken = takeAhead(slide, plan, range);
  let images: RgbImage[] | undefined;
  try {
    images = await taken?.images.catch(() => undefined);
    if (!images) images = await readRange(slide, plan, tiles, ctx.signal);
  } catch (err) {
    if (err instanceof LaminaError) throw err;
    const t = tiles[0]!;
    throw new CorruptSlideError(`${slide.name}: reading tiles from level-0 (${t.x}, ${t.y}) at level ${plan.levelIndex} failed: ${(err as Error).message}`, { cause: err });
  }
  throwIfAborted(ctx.signal, 'batch');
  const t1 = performance.now();
  if (bank !== null && params.scorer === 'mahalanobis-tokens') throw new UnprocessableError("scorer 'mahalanobis-tokens' is the in-slide scorer; with a reference bank use 'knn' or 'auto'");
  const tokenBank = bank?.header.entries === 'tokens' && scoresInBatch(params, bank);
  const tokenStats = !input.embedOnly && tokenStatsInBatch(params, bank, embedder);
  const wantTokens = tokenBank || tokenStats || input.withTokens === true;
  if (wantTokens && !embedder.embedTokens) {
    throw new UnprocessableError(`encoder '${embedder.model.name}' gives no patch tokens, which a token reference bank needs`);
  }
  const embedCall = (imgs: RgbImage[]): Promise<Embedded> => wantTokens
    ? embedder.embedTokens!(imgs, ctx.signal)
    : embedder.embed(imgs, ctx.signal).then((embeddings) => ({ embeddings }));
  // This batch's embedding: the one the previous batch started, when it was of these very tiles
  // and kind, else started now (submitted before the next batch's, so it is first on the GPU).
  const ahead = taken?.embedded;
  const own = ahead && ahead.embedder === embedder && ahead.tokens === wantTokens
    ? ahead.result.catch(() => embedCall(images)) // a failed or cancelled one is redone here, which reports the error
    : embedCall(images);
  if (readAhead(embedder.device)) {
    // Embed ahead only for a caller seen walking consecutive ranges (this range was read ahead):
    // a queue worker handed scattered batches would throw the GPU work away.
    const next = prefetch(slide, plan, { start: range.end, end: Math.min(plan.tiles.length, range.end + tiles.length) }, ctx.signal);
    if (next && taken && embedAhead(embedder.device)) {
      const result = next.images.then(embedCall);
      result.catch(() => {}); // the batch that takes it embeds again
      next.embedded = { embedder, tokens: wantTokens, result };
    }
  }
  const { embeddings, tokens, tokensPerTile = 0, timings: detail } = await own;
  const t2 = performance.now();
  const dim = embedder.model.embeddingSize;
  if (embeddings.length !== tiles.length * dim) {
    throw new UnprocessableError(`encoder '${embedder.model.name}' returned ${embeddings.length} values for ${tiles.length} tiles of ${dim}`);
  }
  const rawScores = tokenBank
    ? await tileMaxTokenScores(bank!, tokens!, tiles.length, tokensPerTile, params.k)
    : tokenStats
      ? await tokenStatistics(await slideTokenModel(slide, plan, embedder, ctx.signal), embedder.device, tokens!, tiles.length, tokensPerTile)
      : scoresInBatch(params, bank) ? await knnScoresFast(bank!, embeddings, tiles.length, params.k) : null;
  const timings = { read: t1 - t0, embed: t2 - t1, score: performance.now() - t2, ...(detail ? { detail } : {}) };
  if (process.env.LAMINA_BATCH_TIMINGS) logBatchTimings(range, timings);
  return { start: range.start, count: tiles.length, dim, embeddings, rawScores, timings, ...(input.withTokens ? { tokens, tokensPerTile } : {}) };
};

/**
 * The in-slide token statistic of a batch: for WebGPU batches on a hardware GPU the per-token
 * distances on the GPU (~1 GFLOP; token-score-gpu.ts: 22-30 ms a batch of 256 on the H200), else
 * on the worker threads (163-227 ms there), which are also the fallback when no GPU scorer can be made.
 */
async function tokenStatistics(model: MahalanobisModel, device: string, tokens: Float32Array, tiles: number, tokensPerTile: number): Promise<Float64Array> {
  if (device === 'webgpu' && tokenScoreOnGpu() && tokens.length === tiles * tokensPerTile * model.dim) {
    const distances = await gpuTokenDistances(model, tokens, tiles * tokensPerTile);
    if (distances) return topTokenMeans(distances, tiles, tokensPerTile);
  }
  return tokenDistancesParallel(model, tokens, tiles, tokensPerTile);
}

/**
 * One read ahead: after reading its tiles a batch starts reading the next range of the plan, so
 * the slide's decoding (sharp, on libuv's threads) runs while this batch embeds and scores. One
 * slot per process; a batch that asks for another range drops it (a queue worker's batches need
 * not be consecutive). A prefetch that failed is read again by the batch, which then reports the
 * error itself.
 */
let ahead: Ahead | undefined;

interface Ahead {
  slide: Slide; plan: TilePlan; start: number; end: number; images: Promise<RgbImage[]>;
  /** The next batch's embedding, started by this one (`embedAhead`): at most one batch in flight beyond the current. */
  embedded?: { embedder: TileEmbedder; tokens: boolean; result: Promise<Embedded> };
}

/** What one embedding call gives a batch. */
interface Embedded {
  embeddings: Float32Array;
  tokens?: Float32Array;
  tokensPerTile?: number;
  timings?: EmbedTimings;
}

/**
 * Read ahead only where the host would otherwise idle: with a GPU engine the cores are free while
 * the device works (on the H200 it hid 12.8 s of reads); with the CPU engine inference already
 * takes every core, and an overlapped read only raises the peak (bench:analyze at 4.29 Gpx: 256 MiB
 * without, 272-291 with). LAMINA_READ_AHEAD=1 or 0 forces it.
 */
export function readAhead(device: string): boolean {
  const env = process.env.LAMINA_READ_AHEAD;
  return env === undefined || env === '' ? device !== 'cpu' : env !== '0';
}

/**
 * Embed ahead (with read-ahead on): a batch also starts embedding the next range once its tiles
 * are read, so that embedding's upload and the GPU's compute run while this batch reads its
 * embeddings back and scores them (two forwards in flight, webgpu-vit-model.ts). Only our WebGPU
 * engine, whose forwards may overlap; LAMINA_EMBED_AHEAD=0 turns it off.
 */
export function embedAhead(device: string): boolean {
  return device === 'webgpu' && process.env.LAMINA_EMBED_AHEAD !== '0';
}

function prefetch(slide: Slide, plan: TilePlan, next: TileRange, signal: AbortSignal): Ahead | undefined {
  ahead = undefined;
  if (next.start >= next.end) return undefined;
  const images = readRange(slide, plan, plan.tiles.slice(next.start, next.end), signal);
  images.catch(() => {}); // the batch that takes it reads again
  ahead = { slide, plan, ...next, images };
  return ahead;
}

function takeAhead(slide: Slide, plan: TilePlan, range: TileRange): Ahead | undefined {
  const a = ahead;
  ahead = undefined;
  if (!a || a.slide !== slide || a.plan !== plan || a.start !== range.start || a.end !== range.end) return undefined;
  return a;
}

/** Read units decoded at once per batch (`readConcurrency`: LAMINA_READ_PARTS, else the cores up to libuv's pool). */
export const readParts = readConcurrency;

/**
 * A batch's tiles, `parts` read units at a time (`readTiles` decodes each stored tile the batch
 * touches once; units are bands of stored tiles, so a many-core host decodes a dozen or more at once).
 */
export function readRange(slide: Slide, plan: TilePlan, tiles: readonly PlannedTile[], signal?: AbortSignal, parts = readParts()): Promise<RgbImage[]> {
  return readTiles(slide, plan, tiles, signal, parts);
}

/** One stderr line per batch (LAMINA_BATCH_TIMINGS=1): where the host's time went. */
function logBatchTimings(range: TileRange, t: NonNullable<BatchOutput['timings']>): void {
  const f = (v: number | undefined) => (v ?? 0).toFixed(0);
  const d = t.detail;
  process.stderr.write(`batch ${range.start}-${range.end}: read ${f(t.read)} ms, embed ${f(t.embed)} ms` +
    (d ? ` (preprocess ${f(d.preprocess)}, upload ${f(d.upload)}, gpu wait ${f(d.gpuWait)}, readback ${f(d.readback)})` : '') +
    `, score ${f(t.score)} ms\n`);
}

const BATCH_MAGIC = 'LMNBATC1';

/**
 * Binary form of a batch output: magic, u32 start, u32 count, u32 dim, u32 hasScores, then
 * count × dim float32 LE, then (if scores) count float64 LE.
 */
export function encodeBatchOutput(out: BatchOutput): Buffer {
  const head = Buffer.alloc(24);
  head.write(BATCH_MAGIC, 0, 'ascii');
  head.writeUInt32LE(out.start, 8);
  head.writeUInt32LE(out.count, 12);
  head.writeUInt32LE(out.dim, 16);
  head.writeUInt32LE(out.rawScores ? 1 : 0, 20);
  const emb = Buffer.from(out.embeddings.buffer, out.embeddings.byteOffset, out.embeddings.byteLength);
  const parts: Buffer[] = [head, Buffer.from(emb)];
  if (out.rawScores) parts.push(Buffer.from(out.rawScores.buffer, out.rawScores.byteOffset, out.rawScores.byteLength));
  return Buffer.concat(parts);
}

/** Parses `encodeBatchOutput`'s bytes, checking every size. */
export function decodeBatchOutput(bytes: Buffer): BatchOutput {
  if (bytes.length < 24 || bytes.toString('ascii', 0, 8) !== BATCH_MAGIC) throw new UnprocessableError('not a Lamina batch output');
  const start = bytes.readUInt32LE(8);
  const count = bytes.readUInt32LE(12);
  const dim = bytes.readUInt32LE(16);
  const hasScores = bytes.readUInt32LE(20) === 1;
  const expected = 24 + count * dim * 4 + (hasScores ? count * 8 : 0);
  if (bytes.length !== expected) throw new UnprocessableError(`batch output is ${bytes.length} bytes, expected ${expected}`);
  const embeddings = new Float32Array(count * dim);
  Buffer.from(embeddings.buffer).set(bytes.subarray(24, 24 + count * dim * 4));
  let rawScores: Float64Array | null = null;
  if (hasScores) {
    rawScores = new Float64Array(count);
    Buffer.from(rawScores.buffer).set(bytes.subarray(24 + count * dim * 4));
  }
  return { start, count, dim, embeddings, rawScores };
}
