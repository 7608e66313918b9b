/**
 * The kNN scorer on the GPU when the engine is webgpu: same contract and results as `knnScores`
 * (mean Euclidean distance to the k nearest bank entries) through kernels/knn, with the bank
 * uploaded once. Falls back to the CPU scorer, with a warning, when no adapter exists or k > 8.
 * @example
 *   const scorer = await createKnnScorer(bank, { engine: 'webgpu' });
 *   const scores = await scorer.score(embeddings, n, 1);
 *   await scorer.close();
 */
import { knnScores, type MemoryBank, type NearExclusion } from './knn.ts';

export interface KnnScorer {
  /** 'webgpu' when the kernels run, 'cpu' otherwise. */
  readonly device: 'cpu' | 'webgpu';
  /** With `near`, query i skips bank entries within `radius` cells of `positions[i]` (needs options.bankPositions). */
  score(embeddings: Float32Array, count: number, k: number, near?: { positions: Uint32Array; radius: number }): Promise<Float64Array>;
  close(): Promise<void>;
}

export interface KnnScorerOptions {
  /** @defaultValue 'cpu' */
  engine?: 'cpu' | 'webgpu' | 'cuda';
  /** Grid positions of the bank entries (`packPosition`), for `score`'s `near`. */
  bankPositions?: Uint32Array;
  /** Where the fallback warning goes. @defaultValue console.warn */
  warn?: (message: string) => void;
}

/** A scorer for `bank`: GPU kernels for engine 'webgpu' when an adapter exists, else `knnScores`. */
export async function createKnnScorer(bank: MemoryBank, options: KnnScorerOptions = {}): Promise<KnnScorer> {
  const exclusion = (near?: { positions: Uint32Array; radius: number }): NearExclusion | undefined => {
    if (!near) return undefined;
    if (!options.bankPositions) throw new Error('kNN near exclusion needs the bank entries\' positions');
    return { bankPositions: options.bankPositions, ...near };
  };
  const cpu: KnnScorer = { device: 'cpu', score: async (e, n, k, near) => knnScores(bank, e, n, k, undefined, exclusion(near)), close: async () => undefined };
  if (options.engine !== 'webgpu') return cpu;
  const warn = options.warn ?? ((m: string) => console.warn(m));
  try {
    const [{ GpuContext }, { KnnSearch, KNN_MAX_K }] = await Promise.all([import('../../kernels/gpu/gpu-context.ts'), import('../../kernels/knn/knn.ts')]);
    const ctx = await GpuContext.create();
    let knn: Awaited<ReturnType<typeof KnnSearch.create>>;
    try {
      knn = await KnnSearch.create(ctx, { ...bank, ...(options.bankPositions ? { positions: options.bankPositions } : {}) });
    } catch (err) {
      await ctx.destroy();
      throw err;
    }
    return {
      device: 'webgpu',
      async score(e, n, k, near) {
        if (k > KNN_MAX_K) return knnScores(bank, e, n, k, undefined, exclusion(near));
        return (await knn.search(e, n, k, near ? { exclude: near } : {})).scores;
      },
      async close() { knn.destroy(); await ctx.destroy(); },
    };
  } catch (err) {
    warn(`lamina: GPU kNN unavailable (${(err as Error).message}); scoring on the CPU`);
    return cpu;
  }
}
