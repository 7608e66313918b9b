/**
 * The per-batch stage in region mode (`processBatch` hands over when the plan has `cells`): read
 * each region at level 0 (clipped to the slide and padded with white where the slide is smaller
 * than a region), encode it as one patch sequence, and keep the token of every cell the region
 * scores. The output is a `BatchOutput` whose rows are cells (in the plan's cell numbering), so
 * the spill, the queue's batch files and the in-slide scorers work on cells as they do on tiles.
 * With a token reference bank the cells are scored here (kNN), as tiles are.
 */
import type { AnalysisParams } from '../../pipelines/anomaly.ts';
import { CorruptSlideError, InvalidParameterError, LaminaError, UnprocessableError } from '../errors.ts';
import type { RgbImage, Slide } from '../readers/types.ts';
import { knnScoresFast } from '../scoring/knn-fast.ts';
import type { ReferenceBank } from '../scoring/bank.ts';
import { forEachOwnedCell, regionsPerBatch } from '../tiling/region-plan.ts';
import type { PlannedTile, TilePlan } from '../tiling/tile-plan.ts';
import type { BatchInput, BatchOutput } from './batch.ts';
import { throwIfAborted, type StageContext } from './stage.ts';

/**
 * Region mode scores patch tokens, so a bank must hold tokens.
 * @throws InvalidParameterError for a bank of pooled tile embeddings.
 */
export function checkRegionBank(bank: ReferenceBank | null): void {
  if (bank && bank.header.entries !== 'tokens') {
    throw new InvalidParameterError('regionSize scores patch tokens: the reference bank holds pooled tile embeddings; build a token bank (lamina fit-reference --bank-entries tokens) or analyse without --reference');
  }
}

/** Reads one planned region as an R×R image (white beyond the slide). */
async function readRegionImage(slide: Slide, region: PlannedTile, size: number, signal: AbortSignal): Promise<RgbImage> {
  let img: RgbImage;
  try {
    // each stored tile is read by one region only: keeping decoded tiles would only hold memory
    img = await slide.readRegion(region.x, region.y, 0, region.width, region.height, { signal, cache: false });
  } catch (err) {
    if (err instanceof LaminaError) throw err;
    throw new CorruptSlideError(`${slide.name}: reading the ${size}px region at level-0 (${region.x}, ${region.y}) failed: ${(err as Error).message}`, { cause: err });
  }
  if (img.width === size && img.height === size) return img;
  const data = Buffer.alloc(size * size * 3, 255);
  for (let r = 0; r < img.height; r++) img.data.copy(data, r * size * 3, r * img.width * 3, (r + 1) * img.width * 3);
  return { width: size, height: size, data };
}

/** Stage body: encode (and with a token bank, score) one range of regions. */
export async function processRegionBatch(input: BatchInput, params: AnalysisParams, ctx: StageContext): Promise<BatchOutput> {
  const { slide, plan, range, embedder, bank } = input;
  const cells = plan.cells!;
  if (!(range.start >= 0 && range.end <= plan.tiles.length && range.start < range.end)) {
    throw new UnprocessableError(`region range ${range.start}..${range.end} is outside the plan's ${plan.tiles.length} regions`);
  }
  if (!embedder.embedRegions) {
    throw new UnprocessableError(`encoder '${embedder.model.name}' cannot encode native-resolution regions (it needs patch-token output and an engine with embedRegion)`);
  }
  checkRegionBank(bank);
  const dim = embedder.model.embeddingSize, R = cells.regionSize, side = R / cells.size;
  const start = cells.owned[range.start]!.start;
  let count = 0;
  for (let i = range.start; i < range.end; i++) count += cells.owned[i]!.count;
  const embeddings = new Float32Array(count * dim);
  const timings = { read: 0, embed: 0, score: 0 };
  // A queue may hand over a longer range than the pixel budget; encode it in budget-sized chunks.
  const chunk = regionsPerBatch(R, params.batchSize);
  for (let c = range.start; c < range.end; c += chunk) {
    throwIfAborted(ctx.signal, 'batch');
    const t0 = performance.now();
    const members = plan.tiles.slice(c, Math.min(range.end, c + chunk));
    const images: RgbImage[] = [];
    for (const region of members) images.push(await readRegionImage(slide, region, R, ctx.signal));
    throwIfAborted(ctx.signal, 'batch');
    const t1 = performance.now();
    const { tokens, grid } = await embedder.embedRegions(images, ctx.signal);
    if (grid !== side || tokens.length !== members.length * side * side * dim) {
      throw new UnprocessableError(`encoder '${embedder.model.name}' gave a ${grid}x${grid} token grid for ${R}px regions; the plan has ${cells.size}px cells (${side}x${side})`);
    }
    members.forEach((region, m) => {
      forEachOwnedCell(plan, region.index, (k, _col, _row, local) => {
        const from = (m * side * side + local) * dim;
        embeddings.set(tokens.subarray(from, from + dim), (k - start) * dim);
      });
    });
    timings.read += t1 - t0;
    timings.embed += performance.now() - t1;
  }
  const t2 = performance.now();
  const rawScores = bank && params.scorer !== 'mahalanobis' ? await knnScoresFast(bank, embeddings, count, params.k) : null;
  timings.score = performance.now() - t2;
  return { start, count, dim, embeddings, rawScores, timings };
}
