/**
 * What each queue's job does, composed from the pipeline stages (src/pipeline) — the same stages
 * `lamina analyze` runs in one process. workers/*.ts are the thin BullMQ entry points over these.
 *
 * At-least-once without damage: a batch writes its output under a key derived from (analysis,
 * batch index) by atomic rename, then counts itself through an idempotent Redis script, so a batch
 * retried or taken over after a crash overwrites the same file and counts once. The aggregate step
 * reads exactly one output per batch of the plan.
 */
import { mkdir, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { UnrecoverableError } from 'bullmq';
import type { FlowProducer, Queue } from 'bullmq';
import { CancelledError, LaminaError, UnprocessableError } from '../errors.ts';
import { parseAnalysisParams, type AnalysisParams } from '../../pipelines/anomaly.ts';
import { batchRanges, decodeBatchOutput, encodeBatchOutput, processBatch, type BatchOutput } from '../pipeline/batch.ts';
import type { ModelInfo, TileEmbedder } from '../pipeline/embedder.ts';
import { finishAnalysis } from '../pipeline/finish.ts';
import { openEmbedder } from '../pipeline/open-embedder.ts';
import { planAnalysis } from '../pipeline/plan.ts';
import type { StageContext } from '../pipeline/stage.ts';
import { openSlide } from '../readers/registry.ts';
import type { Slide } from '../readers/types.ts';
import { checkBankMatchesModel, readBank, type ReferenceBank } from '../scoring/bank.ts';
import type { TilePlan } from '../tiling/tile-plan.ts';
import { keys, Records, type AnalysisRecord } from '../storage/records.ts';
import { readJsonIfExists, writeJson, type Storage } from '../storage/storage.ts';
import { jobIds, QUEUE_NAMES, type AggregateJobData, type BatchJobData, type PlanJobData } from './names.ts';
import { stopSignal, type ProgressStore } from './progress-store.ts';

/** The part of a BullMQ job a processor uses (also what a sandboxed child receives). */
export interface JobLike<T> {
  id?: string;
  data: T;
  attemptsMade: number;
  opts: { attempts?: number };
  updateProgress(value: number | object): Promise<void>;
}

/** What processors share in one worker process. */
export interface WorkerContext {
  storage: Storage;
  records: Records;
  progress: ProgressStore;
  /** Needed by the plan processor, which adds the batch flow. */
  flow?: FlowProducer;
  /** The aggregate queue, so a retried plan job finds the flow it already added. */
  aggregateQueue?: Queue;
  /** Execution provider forced by `lamina worker --ep`; null = the analysis's `engine`. */
  ep: 'cpu' | 'webgpu' | 'cuda' | null;
  log: { info(msg: string): void; warn(msg: string): void };
  /** Retry policy of batch jobs. @defaultValue 5 attempts, exponential backoff from 1 s */
  batchAttempts?: number;
}

/** Stored beside the plan so the aggregate step needs neither the tissue mask nor the encoder. */
interface StoredPlan {
  plan: TilePlan;
  timings: Record<string, number>;
}

const finalAttempt = (job: JobLike<unknown>) => job.attemptsMade + 1 >= (job.opts.attempts ?? 1);

function stageContext(signal: AbortSignal, job: JobLike<unknown>, log: WorkerContext['log']): StageContext {
  return {
    signal,
    progress: (p) => void job.updateProgress({ stage: p.stage, done: p.done, total: p.total }).catch(() => undefined),
    log,
  };
}

/**
 * Runs `work`; an unrecoverable error (corrupt slide, bad model) or the last failed attempt marks
 * the analysis failed with the reason and stops its other jobs. Unrecoverable errors become
 * BullMQ's UnrecoverableError so the job is not retried.
 */
async function guarded<T>(ctx: WorkerContext, job: JobLike<{ analysisId: string }>, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const unrecoverable = err instanceof LaminaError && err.unrecoverable;
    if (unrecoverable || finalAttempt(job)) {
      const reason = `${what}: ${(err as Error).message}`;
      await ctx.progress.stop(job.data.analysisId, 'failed');
      await ctx.records.updateAnalysis(job.data.analysisId, (r) => {
        r.state = 'failed';
        r.reason = reason;
        r.finishedAt = new Date().toISOString();
      });
      ctx.log.warn(`analysis ${job.data.analysisId} failed: ${reason}`);
    }
    if (unrecoverable) throw new UnrecoverableError((err as Error).message);
    throw err;
  }
}

/** True (and the record says so) when the analysis was cancelled or has failed elsewhere. */
async function stopped(ctx: WorkerContext, id: string): Promise<boolean> {
  const why = await ctx.progress.stopReason(id);
  if (why === 'cancelled') {
    await ctx.records.updateAnalysis(id, (r) => { r.state = 'cancelled'; r.finishedAt ??= new Date().toISOString(); });
  }
  return why !== null;
}

async function recordFor(ctx: WorkerContext, id: string, run: number): Promise<{ record: AnalysisRecord; params: AnalysisParams } | null> {
  const record = await ctx.records.findAnalysis(id);
  // A job of an older run (the analysis was re-queued since) or of a deleted analysis does nothing.
  if (!record || record.runs !== run) return null;
  return { record, params: parseAnalysisParams(record.params) };
}

/** plan job: tissue mask and tile plan, then the flow of batch jobs under one aggregate parent. */
export async function runPlanJob(ctx: WorkerContext, job: JobLike<PlanJobData>): Promise<{ batches: number; tiles: number } | null> {
  const { analysisId: id, run } = job.data;
  return guarded(ctx, job, 'planning', async () => {
    const found = await recordFor(ctx, id, run);
    if (!found || (await stopped(ctx, id))) return null;
    const { record, params } = found;
    const parentId = jobIds.aggregate(id, run);
    // A plan job that stalled and runs again finds its flow in place: nothing more to do.
    if (ctx.aggregateQueue && (await ctx.aggregateQueue.getJob(parentId))) return null;
    const slideRecord = await ctx.records.slide(record.slideId);
    await ctx.records.updateAnalysis(id, (r) => { r.state = 'planning'; r.startedAt = new Date().toISOString(); });
    const slide = await openSlide(await ctx.storage.localPath(slideRecord.fileKey));
    const stop = stopSignal(ctx.progress, id);
    let stored: StoredPlan;
    try {
      const t0 = performance.now();
      const { plan, timings } = await planAnalysis({ slide }, params, stageContext(stop.signal, job, ctx.log));
      stored = { plan, timings: { open: Math.round(performance.now() - t0 - timings.tissue - timings.plan), ...timings } };
    } finally {
      stop.dispose();
      await slide.close();
    }
    await writeJson(ctx.storage, keys.plan(id, run), stored);
    const ranges = batchRanges(stored.plan, params.batchSize);
    // Two attempts racing past the check above: only the first initialises the run's counters;
    // a later one adds the flow only if the earlier attempt died before adding it.
    const first = await ctx.progress.startRun(id, run, ranges.length, stored.plan.tiles.length);
    if (!first && ctx.aggregateQueue && (await ctx.aggregateQueue.getJob(parentId))) return null;
    await ctx.records.updateAnalysis(id, (r) => {
      r.state = 'running';
      r.tilesTotal = stored.plan.tiles.length;
      r.batchesTotal = ranges.length;
      r.timings = { ...stored.timings };
    });
    if (!ctx.flow) throw new Error('plan worker has no FlowProducer');
    const attempts = ctx.batchAttempts ?? 5;
    await ctx.flow.add({
      name: 'aggregate',
      queueName: QUEUE_NAMES.aggregate,
      data: { analysisId: id, run } satisfies AggregateJobData,
      opts: { jobId: parentId, attempts: 3, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: { age: 7 * 86400 }, removeOnFail: { age: 30 * 86400 } },
      children: ranges.map((r, index) => ({
        name: 'batch',
        queueName: QUEUE_NAMES.batch,
        data: { analysisId: id, run, index, start: r.start, end: r.end } satisfies BatchJobData,
        opts: {
          jobId: jobIds.batch(id, run, index),
          attempts,
          backoff: { type: 'exponential', delay: 1000 },
          failParentOnFailure: true,
          removeOnComplete: { age: 86400, count: 50_000 },
          removeOnFail: { age: 30 * 86400 },
        },
      })),
    });
    return { batches: ranges.length, tiles: stored.plan.tiles.length };
  });
}

// Per-process caches of the batch worker: consecutive batches of one analysis reuse the opened
// slide, the parsed plan and the loaded encoder (loading a ViT takes seconds).
const slides = new Map<string, Promise<Slide>>();
const plans = new Map<string, Promise<StoredPlan>>();
const embedders = new Map<string, Promise<TileEmbedder>>();
const banks = new Map<string, Promise<ReferenceBank>>();

function cached<T>(map: Map<string, Promise<T>>, key: string, make: () => Promise<T>, max: number, close?: (v: T) => unknown): Promise<T> {
  let p = map.get(key);
  if (!p) {
    p = make();
    p.catch(() => map.delete(key));
    map.set(key, p);
    if (map.size > max) {
      const [oldKey, old] = map.entries().next().value as [string, Promise<T>];
      map.delete(oldKey);
      if (close) void old.then(close, () => undefined);
    }
  }
  return p;
}

/** Releases the caches (worker shutdown). */
export async function closeCaches(): Promise<void> {
  for (const p of slides.values()) await p.then((s) => s.close(), () => undefined);
  for (const p of embedders.values()) await p.then((e) => e.close(), () => undefined);
  slides.clear(); plans.clear(); embedders.clear(); banks.clear();
}

/** batch job: read, encode (and with a bank, score) one range of tiles; store and count it once. */
export async function runBatchJob(ctx: WorkerContext, job: JobLike<BatchJobData>): Promise<{ tiles: number; counted: number } | null> {
  const { analysisId: id, run, index, start, end } = job.data;
  return guarded(ctx, job, `batch ${index} (tiles ${start}..${end})`, async () => {
    const found = await recordFor(ctx, id, run);
    if (!found || (await stopped(ctx, id))) return null;
    const { record, params } = found;
    const outKey = keys.batchOutput(id, run, index);
    const t0 = performance.now();
    // An earlier attempt may have stored the output and died before counting it: count, don't redo.
    if (!(await ctx.storage.stat(outKey))) {
      const slideRecord = await ctx.records.slide(record.slideId);
      const slide = await cached(slides, record.slideId, async () => openSlide(await ctx.storage.localPath(slideRecord.fileKey)), 4, (s) => s.close());
      const { plan } = await cached(plans, `${id}:${run}`, () => ctx.records.storage.read(keys.plan(id, run)).then((b) => JSON.parse(b.toString()) as StoredPlan), 8);
      const engine = ctx.ep ?? params.engine;
      const embedder = await cached(embedders, `${params.model}|${engine}`, () => openEmbedder(params.model, engine), 2, (e) => e.close());
      const bank = params.reference ? await cached(banks, params.reference, () => readBank(params.reference!), 2) : null;
      if (bank) checkBankMatchesModel(bank, basename(params.reference!), embedder.model);
      const stop = stopSignal(ctx.progress, id);
      let out: BatchOutput;
      try {
        out = await processBatch({ slide, plan, range: { start, end }, embedder, bank }, params, stageContext(stop.signal, job, ctx.log));
      } catch (err) {
        if (err instanceof CancelledError || stop.signal.aborted) return null;
        throw err;
      } finally {
        stop.dispose();
      }
      await writeJson(ctx.storage, keys.analysisModel(id, run), embedder.model);
      await ctx.storage.put(outKey, encodeBatchOutput(out));
    }
    const counted = await ctx.progress.markBatchDone(id, run, index, end - start, performance.now() - t0);
    return { tiles: end - start, counted };
  });
}

/** aggregate job: score (in-slide when no bank), calibrate, heatmap, regions, result.json. */
export async function runAggregateJob(ctx: WorkerContext, job: JobLike<AggregateJobData>): Promise<{ slideScore: number } | null> {
  const { analysisId: id, run } = job.data;
  return guarded(ctx, job, 'aggregate', async () => {
    const found = await recordFor(ctx, id, run);
    if (!found || (await stopped(ctx, id))) return null;
    const { record, params } = found;
    await ctx.records.updateAnalysis(id, (r) => { r.state = 'aggregating'; });
    const slideRecord = await ctx.records.slide(record.slideId);
    const stored = await ctx.records.storage.read(keys.plan(id, run)).then((b) => JSON.parse(b.toString()) as StoredPlan);
    const model = await readJsonIfExists<ModelInfo>(ctx.storage, keys.analysisModel(id, run));
    if (!model) throw new UnprocessableError(`analysis ${id}: no batch recorded its model`);
    const ranges = batchRanges(stored.plan, params.batchSize);
    for (let i = 0; i < ranges.length; i++) {
      if (!(await ctx.storage.stat(keys.batchOutput(id, run, i)))) throw new Error(`analysis ${id}: batch ${i} output is missing`);
    }
    const bank = params.reference ? await readBank(params.reference) : null;
    if (bank) checkBankMatchesModel(bank, basename(params.reference!), model);
    const progress = await ctx.progress.read(id);
    const outDir = await ctx.storage.stagingPath();
    await mkdir(outDir);
    const stop = stopSignal(ctx.progress, id);
    try {
      const result = await finishAnalysis({
        plan: stored.plan,
        model,
        bank,
        bankName: params.reference ? basename(params.reference) : null,
        batches: async function* () {
          for (let i = 0; i < ranges.length; i++) {
            const out = decodeBatchOutput(await ctx.storage.read(keys.batchOutput(id, run, i)));
            if (out.start !== ranges[i]!.start || out.count !== ranges[i]!.end - ranges[i]!.start) {
              throw new UnprocessableError(`analysis ${id}: batch ${i} holds tiles ${out.start}+${out.count}, expected ${ranges[i]!.start}..${ranges[i]!.end}`);
            }
            yield out;
          }
        },
        outDir,
        input: { name: slideRecord.name, sha256: slideRecord.sha256, bytes: slideRecord.size },
        timings: { ...stored.timings, encode: progress.encodeMs },
      }, params, stageContext(stop.signal, job, ctx.log));
      // The whole folder appears at once: readers see the old result or the new one.
      await ctx.storage.delete(keys.resultDir(id));
      await ctx.storage.commit(outDir, keys.resultDir(id));
      await ctx.records.updateAnalysis(id, (r) => {
        r.state = 'completed';
        r.score = result.slideScore;
        r.timings = result.timings;
        r.finishedAt = new Date().toISOString();
      });
      return { slideScore: result.slideScore };
    } catch (err) {
      if (err instanceof CancelledError || stop.signal.aborted) {
        await stopped(ctx, id);
        return null;
      }
      throw err;
    } finally {
      stop.dispose();
      await rm(outDir, { recursive: true, force: true });
    }
  });
}
