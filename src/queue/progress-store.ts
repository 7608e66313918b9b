import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import type { AnalysisProgress } from '../api/context.ts';
import { redisKeys } from './names.ts';

const MARK_BATCH_DONE = readFileSync(new URL('./scripts/mark-batch-done.lua', import.meta.url), 'utf8');
const INIT_RUN = readFileSync(new URL('./scripts/init-run.lua', import.meta.url), 'utf8');

/** How long stop flags and progress outlive an analysis. @defaultValue 30 days */
const TTL_S = 30 * 24 * 3600;

/**
 * Live progress and stop flags of analyses, in Redis: shared by the API and every worker. The
 * stored analysis record says what an analysis is; this says how far it has got right now.
 */
export class ProgressStore {
  readonly keys: ReturnType<typeof redisKeys>;

  constructor(readonly redis: Redis | Cluster, prefix: string) {
    this.keys = redisKeys(prefix);
  }

  /**
   * Starts a run: totals set, counters zeroed, so batches of older runs no longer count. Only
   * once per run (see scripts/init-run.lua). @returns false when the run was already initialised
   */
  async startRun(id: string, run: number, batchesTotal: number, tilesTotal: number): Promise<boolean> {
    return (await this.redis.eval(INIT_RUN, 1, this.keys.progress(id), run, batchesTotal, tilesTotal, TTL_S)) === 1;
  }

  /** @returns 1 counted, 0 already counted (retry), -1 stale run; see scripts/mark-batch-done.lua */
  async markBatchDone(id: string, run: number, index: number, tiles: number, ms: number): Promise<number> {
    const done = this.keys.doneBatches(id, run);
    const r = (await this.redis.eval(MARK_BATCH_DONE, 3, done, this.keys.progress(id), this.keys.tilesScored, index, tiles, run, Math.round(ms))) as number;
    if (r === 1) await this.redis.expire(done, TTL_S);
    return r;
  }

  async doneBatches(id: string, run: number): Promise<number[]> {
    return (await this.redis.smembers(this.keys.doneBatches(id, run))).map(Number).sort((a, b) => a - b);
  }

  async read(id: string): Promise<AnalysisProgress & { run: number; encodeMs: number }> {
    const h = await this.redis.hgetall(this.keys.progress(id));
    const n = (k: string) => Number(h[k] ?? 0);
    const tilesTotal = n('tilesTotal');
    return {
      run: n('run'), batchesDone: n('batchesDone'), batchesTotal: n('batchesTotal'), tilesDone: n('tilesDone'), tilesTotal, encodeMs: n('encodeMs'),
      fraction: tilesTotal > 0 ? n('tilesDone') / tilesTotal : 0,
    };
  }

  /** Tells every worker to stop working on the analysis ('cancelled' or 'failed'). */
  async stop(id: string, why: 'cancelled' | 'failed'): Promise<void> {
    await this.redis.set(this.keys.stop(id), why, 'EX', TTL_S);
  }

  async stopReason(id: string): Promise<string | null> {
    return this.redis.get(this.keys.stop(id));
  }

  /** Clears the stop flag (a re-queued analysis). */
  async clearStop(id: string): Promise<void> {
    await this.redis.del(this.keys.stop(id));
  }

  async forget(id: string, runs: number): Promise<void> {
    const keys = [this.keys.progress(id), this.keys.stop(id)];
    for (let r = 1; r <= runs; r++) keys.push(this.keys.doneBatches(id, r));
    for (const k of keys) await this.redis.del(k);
  }

  async tilesScored(): Promise<number> {
    return Number((await this.redis.get(this.keys.tilesScored)) ?? 0);
  }
}

/**
 * An AbortSignal that fires when the analysis's stop flag appears (checked every `intervalMs`) or
 * when `parent` aborts. Call `dispose` when the work ends.
 */
export function stopSignal(store: ProgressStore, id: string, parent?: AbortSignal, intervalMs = 1000): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const onParent = () => ac.abort(parent?.reason);
  parent?.addEventListener('abort', onParent);
  const timer = setInterval(() => {
    store.stopReason(id).then((why) => { if (why) ac.abort(new Error(`analysis ${why}`)); }, () => undefined);
  }, intervalMs);
  timer.unref();
  return { signal: ac.signal, dispose: () => { clearInterval(timer); parent?.removeEventListener('abort', onParent); } };
}
