/**
 * Every queue name, job id and Redis key of Lamina, in one place (BullMQ's queue-keys.ts idea).
 * Job ids are `<kind>-<analysisId>-<run>[-<batch>]`: deterministic, so adding the same job twice is
 * a no-op, and the run number lets a failed analysis be queued again without colliding with the
 * finished jobs of its earlier run.
 */

/** The three queues; a worker serves any subset (GPU machines typically only `batch`). */
export const QUEUE_NAMES = { plan: 'lamina-plan', batch: 'lamina-batch', aggregate: 'lamina-aggregate' } as const;
export type QueueRole = keyof typeof QUEUE_NAMES;
export const QUEUE_ROLES = Object.keys(QUEUE_NAMES) as QueueRole[];

/**
 * BullMQ key prefix. @defaultValue 'lamina' (LAMINA_QUEUE_PREFIX). Tests use a fresh one each.
 * In a Redis Cluster the prefix is wrapped in a hash tag so a queue's keys share one slot.
 */
export function queuePrefix(env: NodeJS.ProcessEnv = process.env, cluster = false): string {
  const p = env.LAMINA_QUEUE_PREFIX || 'lamina';
  return cluster && !p.startsWith('{') ? `{${p}}` : p;
}

export const jobIds = {
  plan: (analysisId: string, run: number) => `plan-${analysisId}-${run}`,
  batch: (analysisId: string, run: number, index: number) => `batch-${analysisId}-${run}-${index}`,
  aggregate: (analysisId: string, run: number) => `aggregate-${analysisId}-${run}`,
};

/** The analysis a job id belongs to, or null for a foreign id. */
export function analysisOfJob(jobId: string | undefined): string | null {
  const m = /^(?:plan|batch|aggregate)-([a-z0-9]+)-\d+/.exec(jobId ?? '');
  return m ? m[1]! : null;
}

/** Lamina's own Redis keys (beside BullMQ's), all under the queue prefix. */
export function redisKeys(prefix: string) {
  const a = (id: string) => `${prefix}:analysis:${id}`;
  return {
    /** Hash: run, batchesTotal, tilesTotal, batchesDone, tilesDone, encodeMs. */
    progress: (id: string) => `${a(id)}:progress`,
    /** Set of batch indices whose output is stored, for one run. */
    doneBatches: (id: string, run: number) => `${a(id)}:run:${run}:done`,
    /** String 'cancelled' or 'failed' while workers should stop working on the analysis. */
    stop: (id: string) => `${a(id)}:stop`,
    /** Counter of tiles scored by all workers (for /metrics). */
    tilesScored: `${prefix}:stats:tiles-scored`,
  };
}

/** Data of each job kind (JSON, small: ids and ranges, never pixels). */
export interface PlanJobData { analysisId: string; run: number }
export interface BatchJobData { analysisId: string; run: number; index: number; start: number; end: number }
export interface AggregateJobData { analysisId: string; run: number }
