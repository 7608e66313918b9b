/**
 * Mahalanobis distances of many rows on the GPU (kernels/whiten), for two callers: the per-token
 * distances of the in-slide token statistic of batches the WebGPU engine embedded (batch.ts: on the
 * H200 the worker threads, token-score-pool.ts, took 227 ms per batch of 256 tiles, more than the
 * forward itself, while the whitening GEMM is ~1 GFLOP; the per-tile top-fraction mean stays on the
 * CPU, `topTokenMeans`), and the in-slide Mahalanobis of region cells (region-finish.ts, engine
 * webgpu: millions of rows a slide), which passes its own warning sink and releases its model at
 * the end of its stage.
 *
 * Lifetime: one `WhitenedNorms` (W and μ on the device) per token model, all on one GpuContext per
 * process, opened on first use and destroyed when its last model is released. A model is released
 * when slide-token-model.ts drops it from its cache, when region-finish.ts ends its stage, after
 * `GPU_IDLE_MS` without a batch (an analysis that ended leaves no device behind), or by
 * `releaseGpuTokenScorers`. Release waits for
 * the batches scoring with it. The encoder's own context is not reachable through `TileEmbedder`,
 * hence a second one: an `--engine webgpu` analysis opens two GpuContexts, and a process never
 * holds more than one for token and cell scoring however many analyses it runs.
 *
 * @example const d = await gpuTokenDistances(model, tokens, 256 * 196); // null: use the CPU
 */
import type { GpuContext } from '../../kernels/gpu/gpu-context.ts';
import type { WhitenedNorms } from '../../kernels/whiten/whiten.ts';
import { whiteningOf, type MahalanobisModel } from '../scoring/mahalanobis.ts';
import { Lease } from '../util/lease.ts';

/** A model's device copy is freed after this long without a batch. */
export const GPU_IDLE_MS = 30_000;

type Held = Lease<Promise<{ norms: WhitenedNorms; on: Shared } | null>>;

const held = new Map<MahalanobisModel, Held>();
interface Shared { ctx: Promise<GpuContext>; users: number }
let shared: Shared | undefined;
let idle: ReturnType<typeof setTimeout> | undefined;
let warned = false;

/** What a caller may set. */
export interface GpuTokenScoreOptions {
  /**
   * Receives each reason the GPU is not used (unavailable, failed), as "GPU token scoring … (why)";
   * the caller says where the rows go instead. @defaultValue one console warning per process
   */
  warn?: (message: string) => void;
}

/**
 * On unless LAMINA_TOKEN_SCORE_GPU=0 (tiles and region cells alike). Measured on the H200
 * (2026-11-29, 1.07-Gpx slide, 8,183 tiles, two runs each): 22-30 ms a batch of 256 against
 * 163-207 ms on the worker threads, 10.9-12.7 s against 13.0-13.6 s for the whole analysis. On a
 * software adapter (lavapipe) the CPU is faster, for region cells even on one thread (2-core dev
 * machine: 400,000 cells 39-55 s against 7.8-8.6 s; a 23,089-cell region analysis's score stage
 * 2.7-3.5 s against 1.4 s), so there it runs only when forced with LAMINA_TOKEN_SCORE_GPU=1
 * (see `open`).
 */
export function tokenScoreOnGpu(): boolean {
  return process.env.LAMINA_TOKEN_SCORE_GPU !== '0';
}

/** LAMINA_TOKEN_SCORE_GPU=1: also on a software adapter (tests). */
function forced(): boolean {
  return process.env.LAMINA_TOKEN_SCORE_GPU === '1';
}

/** Whether the adapter is a software one, learned from the first context opened (one probe a process). */
let softwareAdapter: boolean | undefined;

/**
 * Distances (not squared, as `mahalanobisScores`) of `count` rows of `tokens` to `model`, on the
 * GPU; null when no GPU scorer could be made or it failed (a warning, `options.warn`), so the caller
 * scores on the CPU. After a failure the model's later calls return null at once.
 */
export async function gpuTokenDistances(model: MahalanobisModel, tokens: Float32Array, count: number, options: GpuTokenScoreOptions = {}): Promise<Float64Array | null> {
  if (idle) clearTimeout(idle);
  let h = held.get(model);
  if (!h) held.set(model, h = scorer(open(model, options)));
  const opened = h.acquire();
  try {
    const gpu = await opened;
    if (!gpu) return null;
    return await gpu.norms.distances(tokens, count);
  } catch (err) {
    report(options, `GPU token scoring failed (${(err as Error).message})`);
    // this model stays on the CPU (no retry per batch); its device copy goes
    if (held.get(model) === h) held.set(model, scorer(Promise.resolve(null)));
    void h.retire();
    return null;
  } finally {
    h.release();
    // one timer for all models, not the lease's own: a slide's models go idle together
    if (idle) clearTimeout(idle);
    if (held.size) {
      idle = setTimeout(() => void releaseGpuTokenScorers(), GPU_IDLE_MS);
      idle.unref();
    }
  }
}

/** Frees `model`'s device copy (now, or when its last batch finishes: the promise waits for that). */
export function releaseGpuTokenScorer(model: MahalanobisModel): Promise<void> {
  const h = held.get(model);
  if (!h) return Promise.resolve();
  held.delete(model);
  return h.retire();
}

/** Frees every model's device copy; the context goes with the last one. */
export async function releaseGpuTokenScorers(): Promise<void> {
  if (idle) clearTimeout(idle);
  idle = undefined;
  await Promise.all([...held.keys()].map(releaseGpuTokenScorer));
}

/** Models with a device copy, and whether the shared context is open (tests, diagnostics). */
export function gpuTokenScorerState(): { models: number; contextOpen: boolean } {
  return { models: held.size, contextOpen: shared !== undefined };
}

async function open(model: MahalanobisModel, options: GpuTokenScoreOptions): Promise<{ norms: WhitenedNorms; on: Shared } | null> {
  if (softwareAdapter && !forced()) return null;
  try {
    const [{ GpuContext }, { WhitenedNorms }] = await Promise.all([import('../../kernels/gpu/gpu-context.ts'), import('../../kernels/whiten/whiten.ts')]);
    const s = shared ??= { ctx: GpuContext.create(), users: 0 };
    s.users++;
    try {
      const ctx = await s.ctx;
      softwareAdapter = ctx.capabilities.cpu;
      if (softwareAdapter && !forced()) {
        await unuse(s);
        return null;
      }
      return { norms: await WhitenedNorms.create(ctx, { dim: model.dim, ...whiteningOf(model), mean: model.mean }), on: s };
    } catch (err) {
      await unuse(s);
      throw err;
    }
  } catch (err) {
    report(options, `GPU token scoring unavailable (${(err as Error).message})`);
    return null;
  }
}

function scorer(norms: Held['value']): Held {
  return new Lease(norms, free, { name: 'a GPU token scorer' });
}

async function free(norms: Held['value']): Promise<void> {
  const gpu = await norms;
  if (!gpu) return;
  try { gpu.norms.destroy(); } catch { /* a lost device frees its buffers itself */ }
  await unuse(gpu.on);
}

async function unuse(s: Shared): Promise<void> {
  if (--s.users > 0) return;
  if (shared === s) shared = undefined;
  await s.ctx.then((c) => c.destroy(), () => undefined);
}

/** To the caller's sink every time (an analysis's log), else once per process to the console. */
function report(options: GpuTokenScoreOptions, message: string): void {
  if (options.warn) return options.warn(message);
  if (warned) return;
  warned = true;
  console.warn(`lamina: ${message}; scoring tokens on CPU worker threads`);
}
