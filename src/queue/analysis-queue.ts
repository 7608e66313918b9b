import { createHash } from 'node:crypto';
import { resolve, sep } from 'node:path';
import { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { InvalidParameterError } from '../errors.ts';
import { parseAnalysisParams, type AnalysisParams } from '../../pipelines/anomaly.ts';
import { decodeBatchOutput } from '../pipeline/batch.ts';
import type { TilePlan } from '../tiling/tile-plan.ts';
import type { AnalysisService, AnalysisView, ScoreSnapshot } from '../api/context.ts';
import { keys, Records, TERMINAL_STATES, type AnalysisRecord } from '../storage/records.ts';
import type { FsStorage } from '../storage/fs-storage.ts';
import { AnalysisWatcher } from './analysis-watcher.ts';
import { connectRedis, isCluster } from './connection.ts';
import { liveScores, scoresFromTilesCsv } from './live-scores.ts';
import { jobIds, QUEUE_NAMES, queuePrefix, type PlanJobData, type QueueRole } from './names.ts';
import { ProgressStore } from './progress-store.ts';

export interface AnalysisQueueOptions {
  storage: FsStorage;
  /** @defaultValue REDIS_URL, else redis://127.0.0.1:6379 */
  redisUrl?: string;
  /** @defaultValue LAMINA_QUEUE_PREFIX, else 'lamina' */
  prefix?: string;
  /** Listen to queue events (the API does; `lamina submit` does not). @defaultValue true */
  watch?: boolean;
}

/**
 * The submitting and watching side of the queue (the API and `lamina submit`): queue an analysis,
 * read its state and progress, cancel it, and read its scores for the heatmap layer. Workers are
 * in worker-runner.ts.
 */
export class AnalysisQueue implements AnalysisService {
  readonly records: Records;
  readonly progress: ProgressStore;
  readonly queues: Record<QueueRole, Queue>;
  readonly prefix: string;
  private readonly watcher: AnalysisWatcher | null;
  private readonly redis: Redis | Cluster;
  private readonly planCache = new Map<string, Promise<TilePlan>>();
  private readonly scoreCache = new Map<string, ScoreSnapshot>();

  constructor(readonly opts: AnalysisQueueOptions) {
    // Requests fail after a few reconnect attempts instead of waiting for Redis forever: the API
    // answers 503 (and lists slides without analyses) while Redis is down.
    this.redis = connectRedis(opts.redisUrl, { maxRetriesPerRequest: 2 });
    this.prefix = opts.prefix ?? queuePrefix(process.env, isCluster(opts.redisUrl));
    this.records = new Records(opts.storage);
    this.progress = new ProgressStore(this.redis, this.prefix);
    const q = (name: string) => {
      const queue = new Queue(name, { connection: this.redis, prefix: this.prefix });
      // Connection errors are reported once by connectRedis and to callers; BullMQ re-emits them here.
      queue.on('error', () => undefined);
      return queue;
    };
    this.queues = { plan: q(QUEUE_NAMES.plan), batch: q(QUEUE_NAMES.batch), aggregate: q(QUEUE_NAMES.aggregate) };
    this.watcher = opts.watch === false ? null : new AnalysisWatcher(opts.redisUrl, this.prefix);
  }

  async ready(): Promise<void> {
    await Promise.all(Object.values(this.queues).map((q) => q.waitUntilReady()));
    await this.watcher?.ready();
  }

  /**
   * Model and reference-bank names from an HTTP client must not reach arbitrary server paths:
   * a model is a built-in name or a file under `<data>/models`, a bank a file under `<data>/references`.
   */
  private confine(params: AnalysisParams): AnalysisParams {
    const inside = (value: string, folder: string, name: string) => {
      const root = resolve(this.opts.storage.root, folder);
      const full = resolve(root, value);
      if (!full.startsWith(root + sep)) throw new InvalidParameterError(`${name} must name a file under ${folder}/ of the data directory, not ${JSON.stringify(value)}`);
      return full;
    };
    const builtin = /^[A-Za-z0-9:_-]+$/.test(params.model);
    const model = builtin ? params.model : inside(params.model, 'models', 'model');
    const reference = params.reference === null ? null : inside(params.reference, 'references', 'reference');
    return { ...params, model, reference };
  }

  /** The analysis id: the slide's checksum and the full parameter set, hashed. */
  static idFor(sha256: string, params: AnalysisParams): string {
    return createHash('sha256').update(`${sha256}\n${JSON.stringify(params)}`).digest('hex').slice(0, 24);
  }

  async submit(slideId: string, rawParams: unknown, trusted = false): Promise<{ analysis: AnalysisView; created: boolean }> {
    const parsed = parseAnalysisParams(rawParams ?? {});
    const params = trusted ? parsed : this.confine(parsed);
    const slide = await this.records.slide(slideId);
    const id = AnalysisQueue.idFor(slide.sha256, params);
    const existing = await this.records.findAnalysis(id);
    if (existing && existing.state !== 'failed' && existing.state !== 'cancelled') return { analysis: await this.view(existing), created: false };
    const record: AnalysisRecord = {
      id, slideId, params: params as unknown as Record<string, unknown>, state: 'queued',
      createdAt: existing?.createdAt ?? new Date().toISOString(), runs: (existing?.runs ?? 0) + 1,
    };
    await this.progress.clearStop(id);
    await this.progress.startRun(id, record.runs, 0, 0);
    await this.records.saveAnalysis(record);
    await this.queues.plan.add('plan', { analysisId: id, run: record.runs } satisfies PlanJobData, {
      jobId: jobIds.plan(id, record.runs), attempts: 3, backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { age: 7 * 86400 }, removeOnFail: { age: 30 * 86400 },
    });
    this.watcher?.notify(id);
    return { analysis: await this.view(record), created: true };
  }

  private async view(record: AnalysisRecord): Promise<AnalysisView> {
    const p = await this.progress.read(record.id);
    const same = p.run === record.runs;
    const progress = {
      batchesDone: same ? p.batchesDone : 0, batchesTotal: record.batchesTotal ?? p.batchesTotal,
      tilesDone: same ? p.tilesDone : 0, tilesTotal: record.tilesTotal ?? p.tilesTotal, fraction: same ? p.fraction : 0,
    };
    if (record.state === 'completed') progress.fraction = 1;
    return { ...record, progress };
  }

  async get(id: string): Promise<AnalysisView> {
    return this.view(await this.records.analysis(id));
  }

  async list(slideId?: string): Promise<AnalysisView[]> {
    return Promise.all((await this.records.listAnalyses(slideId)).map((r) => this.view(r)));
  }

  async cancel(id: string): Promise<AnalysisView> {
    const record = await this.records.analysis(id);
    if (TERMINAL_STATES.includes(record.state)) return this.view(record);
    await this.progress.stop(id, 'cancelled');
    const updated = await this.records.updateAnalysis(id, (r) => {
      r.state = 'cancelled';
      r.reason = 'cancelled by request';
      r.finishedAt = new Date().toISOString();
    });
    // Waiting jobs are removed; active ones see the stop flag within a second and end.
    const run = record.runs;
    const ids = [jobIds.plan(id, run), ...Array.from({ length: record.batchesTotal ?? 0 }, (_, i) => jobIds.batch(id, run, i))];
    for (const jobId of ids) {
      const queue = jobId.startsWith('plan') ? this.queues.plan : this.queues.batch;
      const job = await queue.getJob(jobId);
      if (!job) continue;
      const state = await job.getState();
      if (state === 'waiting' || state === 'delayed' || state === 'prioritized') await job.remove().catch(() => undefined);
    }
    this.watcher?.notify(id);
    return this.view(updated);
  }

  async remove(id: string): Promise<void> {
    const record = await this.records.findAnalysis(id);
    if (!record) return;
    await this.cancel(id);
    await this.opts.storage.delete(keys.analysisDir(id));
    await this.progress.forget(id, record.runs);
    this.scoreCache.delete(id);
  }

  private plan(id: string, run: number): Promise<TilePlan> {
    const key = `${id}:${run}`;
    let p = this.planCache.get(key);
    if (!p) {
      p = this.records.storage.read(keys.plan(id, run)).then((b) => (JSON.parse(b.toString()) as { plan: TilePlan }).plan);
      p.catch(() => this.planCache.delete(key));
      this.planCache.set(key, p);
      if (this.planCache.size > 32) this.planCache.delete(this.planCache.keys().next().value!);
    }
    return p;
  }

  /** Final scores from tiles.csv once completed; provisional ones (see live-scores.ts) while running. */
  async scores(id: string): Promise<ScoreSnapshot> {
    const record = await this.records.analysis(id);
    if (record.state === 'completed') {
      const version = `final-${record.runs}`;
      const hit = this.scoreCache.get(id);
      if (hit?.version === version) return hit;
      const csv = (await this.opts.storage.read(keys.analysisFile(id, 'tiles.csv'))).toString('utf8');
      const snap = { tiles: scoresFromTilesCsv(csv), version, final: true };
      this.scoreCache.set(id, snap);
      return snap;
    }
    const run = record.runs;
    const done = await this.progress.doneBatches(id, run);
    const version = `live-${run}-${done.length}`;
    const hit = this.scoreCache.get(id);
    if (hit?.version === version) return hit;
    let snap: ScoreSnapshot = { tiles: [], version, final: TERMINAL_STATES.includes(record.state) };
    if (done.length > 0) {
      const plan = await this.plan(id, run);
      const outputs = [];
      for (const i of done) outputs.push(decodeBatchOutput(await this.opts.storage.read(keys.batchOutput(id, run, i))));
      const params = parseAnalysisParams(record.params);
      snap = { tiles: liveScores(plan.tiles, outputs, params.calibrationZ), version, final: snap.final };
    }
    this.scoreCache.set(id, snap);
    if (this.scoreCache.size > 64) this.scoreCache.delete(this.scoreCache.keys().next().value!);
    return snap;
  }

  watch(id: string, listener: () => void): () => void {
    return this.watcher ? this.watcher.watch(id, listener) : () => undefined;
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async jobCounts(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const q of Object.values(this.queues)) out[q.name] = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed');
    return out;
  }

  tilesScored(): Promise<number> {
    return this.progress.tilesScored();
  }

  /** Closes queues and connections; gives up waiting after `graceMs` (Redis unreachable) and disconnects. */
  async close(graceMs = 3000): Promise<void> {
    const graceful = Promise.all([this.watcher?.close(), ...Object.values(this.queues).map((q) => q.close())]).catch(() => undefined);
    await Promise.race([graceful, new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.watcher?.disconnect();
    this.redis.disconnect();
  }
}
