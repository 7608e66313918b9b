/**
 * `knnScores` with the distance blocks on onnxruntime (CPU): one Gemm per block of queries,
 * bank − 2·q·b + |b|² against the bank baked in as an initializer, so the product runs on ORT's
 * threaded, vectorised SGEMM (the plain JS loop is single-threaded, ~1.7 ms per query at 8,192 × 192).
 * The top-k, self skip and near exclusion stay in JS over each block, so they are exactly those
 * of `knnScores`. The f32 block (bank and queries centred on the bank mean, which keeps |q|² and
 * |b|² small against the distance) only picks k + 4 candidates per query; their distances are
 * recomputed in f64, so scores match `knnScores` to ~1e-7 relative, not to f32 cancellation.
 * @example
 *   const knn = await createOrtKnn(bank);
 *   const scores = await knn.score(embeddings, n, 3);
 *   await knn.close();
 */
import type * as Ort from 'onnxruntime-node';
import { GraphBuilder } from '../encoder/onnx-graph.ts';
import { knnScores, type MemoryBank, type NearExclusion } from './knn.ts';
import type { KnnScorer } from './knn-gpu.ts';

/** Largest [queries × bank] distance block one run returns (f32): bounds the memory per call. */
const BLOCK_BYTES = 32 * 1024 * 1024;

/**
 * Below this many multiply-adds (queries × bank × dim) `knnScoresFast` keeps the JS loop: opening a
 * session (graph, prepacked bank) takes 3–40 ms, the JS loop ~1e9 multiply-adds/s (2 shared cores).
 */
export const ORT_KNN_MIN_WORK = 1e7;

/** Candidates kept beyond k per query for the f64 re-ranking. */
const REFINE_EXTRA = 4;

export interface OrtKnn {
  /** As `knnScores(bank, embeddings, count, k, selfIndex, exclude)`. */
  score(embeddings: Float32Array, count: number, k: number, selfIndex?: (i: number) => number, exclude?: NearExclusion): Promise<Float64Array>;
  close(): Promise<void>;
}

let ortModule: Promise<typeof Ort> | null = null;

function loadOrt(): Promise<typeof Ort> {
  ortModule ??= import('onnxruntime-node').then((m) => {
    const mod = m as unknown as typeof Ort & { default?: typeof Ort };
    return mod.InferenceSession ? mod : mod.default!;
  });
  return ortModule;
}

/**
 * A session for `bank`. Throws when onnxruntime-node cannot be loaded.
 * @param options.threads ORT intra-op threads; 0 lets ORT pick (one per core).
 */
export async function createOrtKnn(bank: MemoryBank, options: { threads?: number } = {}): Promise<OrtKnn> {
  const ort = await loadOrt();
  const { dim, count: m, data } = bank;
  const mean = new Float64Array(dim);
  for (let j = 0; j < m; j++) for (let d = 0; d < dim; d++) mean[d] += data[j * dim + d]!;
  for (let d = 0; d < dim; d++) mean[d] /= Math.max(1, m);
  const mean32 = Float32Array.from(mean);
  const centred = new Float32Array(m * dim);
  const norms = new Float32Array(m);
  for (let j = 0; j < m; j++) {
    let s = 0;
    for (let d = 0, o = j * dim; d < dim; d++, o++) {
      const v = Math.fround(data[o]! - mean32[d]!);
      centred[o] = v;
      s += v * v;
    }
    norms[j] = s;
  }
  const g = new GraphBuilder();
  const q = g.input('queries', ['n', dim]);
  const b = g.floatInit('bank', [m, dim], centred, 'float32');
  const c = g.floatInit('bank_norms', [m], norms, 'float32');
  g.op('Gemm', [q, b, c], { alpha: { float: -2 }, beta: { float: 1 }, transB: 1 }, { output: 'partial' });
  g.output('partial', ['n', m]);
  const session = await ort.InferenceSession.create(g.encode('lamina-knn', {}), {
    executionProviders: ['cpu'], intraOpNumThreads: options.threads ?? 0, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3,
  });
  const rowsPerBlock = Math.max(1, Math.min(4096, Math.floor(BLOCK_BYTES / (4 * Math.max(1, m)))));
  let closed = false;

  return {
    async score(embeddings, count, k, selfIndex, exclude) {
      if (closed) throw new Error('kNN session is closed');
      const kk = Math.max(1, Math.min(k, selfIndex ? m - 1 : m));
      const out = new Float64Array(count);
      const radius = exclude ? exclude.radius : -1;
      // a few more candidates than k: f32 near-ties at the k-th place are settled by the f64 distances
      const keep = Math.max(kk, Math.min(kk + REFINE_EXTRA, selfIndex ? m - 1 : m));
      const best = new Float64Array(keep), bestAt = new Int32Array(best.length);
      const block = new Float32Array(Math.min(count, rowsPerBlock) * dim);
      const qn = new Float64Array(Math.min(count, rowsPerBlock));
      for (let i0 = 0; i0 < count; i0 += rowsPerBlock) {
        const rows = Math.min(rowsPerBlock, count - i0);
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let d = 0, o = (i0 + r) * dim, w = r * dim; d < dim; d++, o++, w++) {
            const v = Math.fround(embeddings[o]! - mean32[d]!);
            block[w] = v;
            s += v * v;
          }
          qn[r] = s;
        }
        const feeds = { queries: new ort.Tensor('float32', block.subarray(0, rows * dim), [rows, dim]) };
        const partial = (await session.run(feeds)).partial!.data as Float32Array;
        for (let r = 0; r < rows; r++) {
          const i = i0 + r;
          const skip = selfIndex ? selfIndex(i) : -1;
          let qc = 0, qr = 0;
          if (exclude) { const p = exclude.positions[i]!; qc = p & 0xffff; qr = p >>> 16; }
          best.fill(Infinity);
          let worst = Infinity;
          for (let j = 0, o = r * m; j < m; j++, o++) {
            const v = partial[o]!;
            if (!(v < worst)) continue;
            if (j === skip) continue;
            if (radius >= 0) {
              const p = exclude!.bankPositions[j]!;
              if (Math.abs((p & 0xffff) - qc) <= radius && Math.abs((p >>> 16) - qr) <= radius) continue;
            }
            let t = keep - 1;
            while (t > 0 && best[t - 1]! > v) { best[t] = best[t - 1]!; bestAt[t] = bestAt[t - 1]!; t--; }
            best[t] = v;
            bestAt[t] = j;
            worst = best[keep - 1]!;
          }
          // the f32 block only chooses candidates: their distances again in f64, the best kk of them
          for (let t = 0; t < keep; t++) {
            if (best[t] === Infinity) continue;
            let s = 0;
            for (let d = 0, a = i * dim, b = bestAt[t]! * dim; d < dim; d++, a++, b++) { const e = embeddings[a]! - data[b]!; s += e * e; }
            best[t] = s;
          }
          best.sort();
          let sum = 0;
          for (let t = 0; t < kk; t++) sum += Math.sqrt(best[t]!);
          out[i] = sum / kk;
        }
      }
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await session.release();
    },
  };
}

/**
 * `knnScores` for one call, on ORT when the work is large enough to pay for the session and
 * onnxruntime-node loads; the JS loop otherwise.
 */
export async function knnScoresFast(
  bank: MemoryBank, embeddings: Float32Array, count: number, k: number, selfIndex?: (i: number) => number, exclude?: NearExclusion,
): Promise<Float64Array> {
  if (count * bank.count * bank.dim < ORT_KNN_MIN_WORK) return knnScores(bank, embeddings, count, k, selfIndex, exclude);
  let knn: OrtKnn;
  try {
    knn = await createOrtKnn(bank);
  } catch {
    return knnScores(bank, embeddings, count, k, selfIndex, exclude);
  }
  try {
    return await knn.score(embeddings, count, k, selfIndex, exclude);
  } finally {
    await knn.close();
  }
}

/**
 * The CPU `KnnScorer` (knn-gpu.ts's contract) on ORT, for a scorer called batch after batch
 * (region-finish.ts): the session opens once. Falls back to `knnScores`, with a warning, when
 * onnxruntime-node cannot be loaded.
 */
export async function createOrtKnnScorer(
  bank: MemoryBank, options: { bankPositions?: Uint32Array; warn?: (message: string) => void } = {},
): Promise<KnnScorer> {
  const exclusion = (near?: { positions: Uint32Array; radius: number }): NearExclusion | undefined => {
    if (!near) return undefined;
    if (!options.bankPositions) throw new Error('kNN near exclusion needs the bank entries\' positions');
    return { bankPositions: options.bankPositions, ...near };
  };
  let knn: OrtKnn | null = null;
  try {
    knn = await createOrtKnn(bank);
  } catch (err) {
    (options.warn ?? ((m: string) => console.warn(m)))(`lamina: onnxruntime kNN unavailable (${(err as Error).message}); scoring with the JS loop`);
  }
  return {
    device: 'cpu',
    score: (e, n, k, near) => (knn ? knn.score(e, n, k, undefined, exclusion(near)) : Promise.resolve(knnScores(bank, e, n, k, undefined, exclusion(near)))),
    close: async () => { await knn?.close(); },
  };
}
