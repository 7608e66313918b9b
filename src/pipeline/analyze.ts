/**
 * `analyzeSlide`: the whole analysis in one process, composed from the same stages a queue runs
 * (planAnalysis → processBatch × n → finishAnalysis). Memory stays bounded: tiles are read per
 * batch, embeddings spill to a temporary file, only per-tile scalars stay in memory. With
 * `regionSize` the same stages plan, encode and score native-resolution regions (a batch is a few
 * regions, the spilled rows are 16-px cells' tokens; src/pipeline/region-*.ts).
 */
import { basename, join } from 'node:path';
import type { AnalysisParams } from '../../pipelines/anomaly.ts';
import { openSlide } from '../readers/registry.ts';
import type { Slide } from '../readers/types.ts';
import { checkBankMatchesModel, readBank, type ReferenceBank } from '../scoring/bank.ts';
import { batchRanges, processBatch } from './batch.ts';
import { checksumInput } from './checksum.ts';
import type { TileEmbedder } from './embedder.ts';
import { EmbeddingSpill } from './embedding-spill.ts';
import { finishAnalysis } from './finish.ts';
import { openEmbedder } from './open-embedder.ts';
import { prepareOutputDir, removeOutputs } from './output.ts';
import { planAnalysis } from './plan.ts';
import { checkRegionBank } from './region-batch.ts';
import type { AnalysisResult } from './result.ts';
import { throwIfAborted, type StageContext } from './stage.ts';

/** Options of `analyzeSlide`. */
export interface AnalyzeOptions {
  /** Result folder (created; earlier outputs in it are replaced). */
  outDir: string;
  /** An already opened encoder (tests, benchmarks); otherwise opened from params.model/engine and closed after. */
  embedder?: TileEmbedder;
}

/**
 * Loads the reference bank named by the parameters and checks it against the model.
 * @throws UnprocessableError when the bank's embedding size or model differs.
 */
export async function loadReference(params: AnalysisParams, embedder: TileEmbedder): Promise<ReferenceBank | null> {
  if (!params.reference) return null;
  const bank = await readBank(params.reference);
  checkBankMatchesModel(bank, basename(params.reference), { name: embedder.model.name, embeddingSize: embedder.model.embeddingSize });
  if (params.regionSize !== null) checkRegionBank(bank);
  return bank;
}

/**
 * Analyses one slide into `options.outDir`; on failure or cancellation the outputs are removed.
 * @example await analyzeSlide('slide.svs', parseAnalysisParams({}), quietContext(), { outDir: 'out' });
 */
export async function analyzeSlide(path: string, params: AnalysisParams, ctx: StageContext, options: AnalyzeOptions): Promise<AnalysisResult> {
  const t0 = performance.now();
  const slide: Slide = await openSlide(path);
  let embedder = options.embedder;
  const ownEmbedder = !embedder;
  const spill = new EmbeddingSpill(join(options.outDir, `.embeddings-${process.pid}.tmp`));
  let prepared = false;
  try {
    const { sha256, bytes } = await checksumInput(path, ctx.signal);
    const t1 = performance.now();
    embedder ??= await openEmbedder(params.model, params.engine);
    const bank = await loadReference(params, embedder);
    const { plan, timings: planTimings } = await planAnalysis({ slide }, params, ctx);
    await prepareOutputDir(options.outDir);
    prepared = true;

    const t2 = performance.now();
    const total = plan.tiles.length;
    let done = 0;
    let readMs = 0;
    let embedMs = 0;
    ctx.progress({ stage: 'encode', done, total });
    for (const range of batchRanges(plan, params.batchSize)) {
      throwIfAborted(ctx.signal, 'analysis');
      const out = await processBatch({ slide, plan, range, embedder, bank }, params, ctx);
      await spill.append(out);
      readMs += out.timings?.read ?? 0;
      embedMs += (out.timings?.embed ?? 0) + (out.timings?.score ?? 0);
      done += plan.cells ? range.end - range.start : out.count; // region mode counts regions, its rows are cells
      ctx.progress({ stage: 'encode', done, total });
    }
    const t3 = performance.now();
    return await finishAnalysis(
      {
        plan,
        model: embedder.model,
        bank,
        bankName: params.reference ? basename(params.reference) : null,
        batches: () => spill.read(),
        outDir: options.outDir,
        input: { name: basename(path), sha256, bytes },
        // `encode` is the whole batch loop; `read` and `embed` (incl. bank kNN) are its parts.
        timings: { open: Math.round(t1 - t0), ...planTimings, encode: Math.round(t3 - t2), read: Math.round(readMs), embed: Math.round(embedMs) },
      },
      params,
      ctx,
    );
  } catch (err) {
    if (prepared) await removeOutputs(options.outDir);
    throw err;
  } finally {
    await spill.dispose();
    if (ownEmbedder) await embedder?.close();
    await slide.close();
  }
}
