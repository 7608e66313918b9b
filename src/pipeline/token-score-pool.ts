/**
 * The in-slide token statistic of a batch (`tileTopTokenDistances`, src/scoring) spread over worker
 * threads. Per token it is a 192-wide (ViT-Tiny) triangular solve in float64, ~0.9 G multiply-adds
 * for a batch of 256 tiles, a second or more of one core: on the H200 that, not the GPU, bounded
 * `analyze`'s tile rate. Tiles are independent, so each worker scores a contiguous run of tiles with
 * the very same function and the results are identical to the inline call.
 *
 * Threads: `LAMINA_SCORE_THREADS` (0 or 1: inline), else min(8, cores − 1). Workers start on first
 * use, are unref'd (they never keep the process alive) and stay for later batches.
 *
 * @example const stats = await tokenDistancesParallel(model, tokens, 256, 196);
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { MahalanobisModel } from '../scoring/mahalanobis.ts';
import { tileTopTokenDistances } from '../scoring/token-gaussian.ts';

/** A worker's job: tiles [tileStart, tileEnd) of the tokens at `byteOffset` of `buffer`. */
export interface ScoreJob {
  id: number;
  /** The model, sent once per worker; later jobs name it by `modelId` (workers keep its whitening). */
  modelId: number;
  model?: MahalanobisModel;
  buffer: ArrayBufferLike;
  byteOffset: number;
  tileStart: number;
  tileEnd: number;
  tokensPerTile: number;
}

/** Fewer tiles than this per worker are scored inline: the message round trip would cost more. */
const MIN_TILES_PER_WORKER = 8;

/** Models a worker keeps (one per analysis in flight in this process). */
export const WORKER_MODELS = 4;

const ENTRY = new URL('./token-score-worker-entry.mjs', import.meta.url);

interface Pool { workers: Worker[]; sent: Set<number>[]; pending: Map<number, { resolve: (v: Float64Array) => void; reject: (e: unknown) => void }> }
let pool: Pool | undefined;
let nextId = 0;
const modelIds = new WeakMap<MahalanobisModel, number>();

/** Worker threads used for scoring (0: inline). */
export function scoreThreads(): number {
  const env = process.env.LAMINA_SCORE_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    return Number.isInteger(n) && n > 1 ? Math.min(n, 64) : 0;
  }
  const n = Math.min(8, availableParallelism() - 1);
  return n > 1 ? n : 0;
}

function startPool(count: number): Pool {
  const pending = new Map<number, { resolve: (v: Float64Array) => void; reject: (e: unknown) => void }>();
  const fail = (err: unknown) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    if (pool?.workers === workers) pool = undefined; // the next batch starts fresh workers
    for (const w of workers) void w.terminate();
  };
  const workers = Array.from({ length: count }, () => {
    const w = new Worker(ENTRY);
    w.on('message', (m: { id: number; scores?: Float64Array; error?: string }) => {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (pending.size === 0) for (const x of workers) x.unref();
      if (m.error) p.reject(new Error(`token scoring worker: ${m.error}`));
      else p.resolve(m.scores!);
    });
    w.on('error', fail);
    w.on('exit', (code) => { if (pending.size) fail(new Error(`token scoring worker exited with code ${code}`)); });
    w.unref(); // idle workers never keep the process alive; a batch refs them while it waits
    return w;
  });
  return { workers, sent: workers.map(() => new Set<number>()), pending };
}

/**
 * `tileTopTokenDistances(model, tokens, tiles, tokensPerTile)`, the same values, on worker threads
 * when the batch is large enough. Tokens in a SharedArrayBuffer (the WebGPU engine's output) are
 * read in place; others are copied once per worker's share.
 */
export async function tokenDistancesParallel(model: MahalanobisModel, tokens: Float32Array, tiles: number, tokensPerTile: number, threads = scoreThreads()): Promise<Float64Array> {
  const parts = Math.min(threads, Math.floor(tiles / MIN_TILES_PER_WORKER));
  if (parts < 2 || tokens.length !== tiles * tokensPerTile * model.dim) return tileTopTokenDistances(model, tokens, tiles, tokensPerTile);
  if (!pool || pool.workers.length < parts) {
    if (pool) for (const w of pool.workers) void w.terminate();
    pool = startPool(parts);
  }
  const p = pool;
  const perTile = tokensPerTile * model.dim;
  const shared = tokens.buffer instanceof SharedArrayBuffer;
  let modelId = modelIds.get(model);
  if (modelId === undefined) modelIds.set(model, modelId = nextId++);
  const jobs: Promise<Float64Array>[] = [];
  for (const w of p.workers) w.ref();
  for (let k = 0; k < parts; k++) {
    const tileStart = Math.floor((k * tiles) / parts), tileEnd = Math.floor(((k + 1) * tiles) / parts);
    const id = nextId++;
    let job: ScoreJob;
    let transfer: ArrayBuffer[] = [];
    if (shared) {
      job = { id, modelId, buffer: tokens.buffer, byteOffset: tokens.byteOffset, tileStart, tileEnd, tokensPerTile };
    } else {
      const own = tokens.slice(tileStart * perTile, tileEnd * perTile);
      job = { id, modelId, buffer: own.buffer, byteOffset: -tileStart * perTile * 4, tileStart, tileEnd, tokensPerTile };
      transfer = [own.buffer];
    }
    if (!p.sent[k]!.has(modelId)) {
      job.model = model;
      const sent = p.sent[k]!;
      sent.add(modelId);
      // the worker keeps the same latest models (token-score-worker.ts): forget what it drops
      if (sent.size > WORKER_MODELS) sent.delete(sent.values().next().value!);
    }
    jobs.push(new Promise((resolve, reject) => {
      p.pending.set(id, { resolve, reject });
      p.workers[k]!.postMessage(job, transfer);
    }));
  }
  const out = new Float64Array(tiles);
  const results = await Promise.all(jobs);
  let at = 0;
  for (const r of results) { out.set(r, at); at += r.length; }
  return out;
}
