import { fileURLToPath } from 'node:url';
import { FlowProducer, Queue, Worker, type Processor } from 'bullmq';
import { Records } from '../storage/records.ts';
import type { FsStorage } from '../storage/fs-storage.ts';
import { connectRedis, isCluster } from './connection.ts';
import { analysisOfJob, QUEUE_NAMES, queuePrefix, type QueueRole } from './names.ts';
import { closeCaches, type WorkerContext } from './processors.ts';
import { aggregateProcessor } from '../../workers/aggregate.ts';
import { planProcessor } from '../../workers/plan.ts';
import { ProgressStore } from './progress-store.ts';

export interface WorkerRunnerOptions {
  storage: FsStorage;
  /** @defaultValue REDIS_URL */
  redisUrl?: string;
  /** @defaultValue LAMINA_QUEUE_PREFIX, else 'lamina' */
  prefix?: string;
  /** @defaultValue all three */
  queues?: QueueRole[];
  /** Jobs run at once per queue (batch jobs each in their own child process). @defaultValue 1 */
  concurrency?: number;
  /** Forces the encoder's execution provider. @defaultValue null (the analysis's `engine`) */
  ep?: 'cpu' | 'webgpu' | 'cuda' | null;
  /**
   * Run batch jobs (the encoder: ONNX Runtime, Dawn) in child processes, so a native crash kills
   * one child, not the worker, and a busy event loop never starves lock renewal. @defaultValue true
   */
  sandbox?: boolean;
  /** How long a job's lock lives without renewal; a worker killed mid-job is noticed after it. @defaultValue 30000 */
  lockDurationMs?: number;
  /** How often stalled jobs (expired locks) are looked for and moved back to wait. @defaultValue 30000 */
  stalledIntervalMs?: number;
  /** Times a job may stall before it fails. @defaultValue 3 */
  maxStalledCount?: number;
  /** Attempts of each batch job (exponential backoff from 1 s). @defaultValue 5 */
  batchAttempts?: number;
  log?: WorkerContext['log'];
}

/** The running workers of one process. */
export interface RunningWorkers {
  workers: Worker[];
  close(): Promise<void>;
}

const BATCH_ENTRY = fileURLToPath(new URL('../../workers/batch.ts', import.meta.url));

/**
 * Starts BullMQ workers for the requested queues. Plan and aggregate jobs run in this process;
 * batch jobs in sandboxed children (workers/batch.ts) unless `sandbox` is false.
 */
export async function startWorkers(opts: WorkerRunnerOptions): Promise<RunningWorkers> {
  const prefix = opts.prefix ?? queuePrefix(process.env, isCluster(opts.redisUrl));
  const roles = opts.queues ?? ['plan', 'batch', 'aggregate'];
  const log = opts.log ?? { info: (m: string) => console.log(m), warn: (m: string) => console.warn(m) };
  const redis = connectRedis(opts.redisUrl);
  const connections = [redis];
  const flow = new FlowProducer({ connection: redis, prefix });
  const aggregateQueue = new Queue(QUEUE_NAMES.aggregate, { connection: redis, prefix });
  flow.on('error', () => undefined);
  aggregateQueue.on('error', () => undefined);
  const ctx: WorkerContext = {
    storage: opts.storage, records: new Records(opts.storage), progress: new ProgressStore(redis, prefix),
    flow, aggregateQueue, ep: opts.ep ?? null, log, batchAttempts: opts.batchAttempts,
  };
  const common = {
    prefix,
    concurrency: opts.concurrency ?? 1,
    lockDuration: opts.lockDurationMs ?? 30_000,
    stalledInterval: opts.stalledIntervalMs ?? 30_000,
    maxStalledCount: opts.maxStalledCount ?? 3,
  };
  const workers: Worker[] = [];
  const make = (name: string, processor: string | Processor, extra: object = {}) => {
    // Each worker gets its own connection: BullMQ blocks on it while waiting for jobs.
    const connection = connectRedis(opts.redisUrl);
    connections.push(connection);
    const w = new Worker(name, processor, { connection, ...common, ...extra });
    w.on('error', (err) => log.warn(`worker ${name}: ${err.message}`));
    w.on('failed', (job, err) => {
      log.warn(`${name} job ${job?.id} failed (attempt ${job?.attemptsMade}): ${err.message}`);
      // Processors record their own final failures; a job that stalled too often (its workers kept
      // dying) is failed by BullMQ without reaching them, so it is recorded here.
      const id = analysisOfJob(job?.id);
      if (id && /stalled more than allowable limit/.test(err.message)) {
        void ctx.progress.stop(id, 'failed').then(() => ctx.records.updateAnalysis(id, (r) => {
          r.state = 'failed';
          r.reason = `${name} job ${job!.id}: ${err.message}`;
          r.finishedAt = new Date().toISOString();
        })).catch(() => undefined);
      }
    });
    workers.push(w);
  };
  if (roles.includes('plan')) make(QUEUE_NAMES.plan, planProcessor(ctx));
  if (roles.includes('batch')) {
    if (opts.sandbox === false) {
      const { runBatchJob } = await import('./processors.ts');
      make(QUEUE_NAMES.batch, (job) => runBatchJob(ctx, job));
    } else {
      make(QUEUE_NAMES.batch, BATCH_ENTRY, {
        useWorkerThreads: false,
        workerForkOptions: {
          // The child runs TypeScript through tsx, resolved from here so any working directory works.
          execArgv: ['--import', import.meta.resolve('tsx')],
          env: {
            ...process.env,
            LAMINA_DATA_DIR: opts.storage.root,
            REDIS_URL: opts.redisUrl ?? process.env.REDIS_URL ?? '',
            LAMINA_QUEUE_PREFIX: prefix,
            LAMINA_EP: opts.ep ?? '',
          },
        },
      });
    }
  }
  if (roles.includes('aggregate')) make(QUEUE_NAMES.aggregate, aggregateProcessor(ctx));
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return {
    workers,
    async close() {
      // Active jobs finish first (up to a lock duration); with Redis gone there is nothing to wait for.
      const graceful = (async () => {
        await Promise.all(workers.map((w) => w.close()));
        await flow.close();
        await aggregateQueue.close();
      })().catch(() => undefined);
      await Promise.race([graceful, new Promise((r) => setTimeout(r, redis.status === 'ready' ? common.lockDuration : 3000).unref())]);
      await closeCaches();
      for (const c of connections) c.disconnect();
    },
  };
}
