/**
 * `knnScores` with the distance blocks on onnxruntime (CPU): per block of queries one Gemm,
 * |b|² − 2·q·b against the bank baked in as an initializer (both centred on the bank mean, which
 * keeps the norms small against the distances), then TopK, on ORT's threads and vectorised SGEMM
 * (the plain JS loop is single-threaded, ~1.2 ms per query at 8,192 × 192 on the dev machine).
 * Only k + 4 candidates per query, plus as many as its self skip and near exclusion could remove
 * (an upper bound from a bucket grid), come back; the skips are applied here exactly as in
 * `knnScores`, and the survivors' distances recomputed in f64, so scores equal `knnScores` to
 * ~1e-15 relative (f32 near-ties at the k-th place are settled in f64). When a neighbourhood
 * could hold more than `TOPK_MAX` entries the whole distance block comes back and is scanned here.
 * @example
 *   const knn = await createOrtKnn(bank);
 *   const scores = await knn.score(embeddings, n, 3);
 *   await knn.close();
 */
import type * as Ort from 'onnxruntime-node';
import { DataType, GraphBuilder, onnx } from '../encoder/onnx-graph.ts';
import { knnScores, type MemoryBank, type NearExclusion } from './knn.ts';
import type { KnnScorer } from './knn-gpu.ts';

/** Largest [queries × bank] f32 distance block of one run (inside ORT): bounds the memory per call. */
const BLOCK_BYTES = 16 * 1024 * 1024;

/**
 * Most candidates per query the graph's TopK returns; past this (a sample dense around the
 * queries, whose neighbourhoods skip many entries) ORT's TopK costs more than returning the
 * whole distance block and scanning it in JS (TopK 512 of 8,192: ~2× TopK 64).
 */
const TOPK_MAX = 256;

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
  const { mean32, centred, norms } = centre(data, m, dim);
  // TopK in the graph: only [n, K] candidates cross into JS, and ORT runs the selection threaded
  const g = new GraphBuilder();
  const q = g.input('queries', ['n', dim]);
  g.inputs.push(int64Info('candidates', [1]));
  const b = g.floatInit('bank', [m, dim], centred, 'float32');
  const c = g.floatInit('bank_norms', [m], norms, 'float32');
  const partial = g.op('Gemm', [q, b, c], { alpha: { float: -2 }, beta: { float: 1 }, transB: 1 }, { output: 'partial' });
  g.op('TopK', [partial, 'candidates'], { axis: 1, largest: 0, sorted: 1 }, { outputs: ['values', 'indices'] });
  g.output('partial', ['n', m]);
  g.outputs.push(int64Info('indices', ['n', 'K']));
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
      const best = new Float64Array(keep), bestAt = new Int32Array(keep);
      const block = new Float32Array(Math.min(count, rowsPerBlock) * dim);
      const near = exclude && radius >= 0 ? nearCounter(exclude.bankPositions, radius) : null;
      for (let i0 = 0; i0 < count; i0 += rowsPerBlock) {
        const rows = Math.min(rowsPerBlock, count - i0);
        // the candidates must reach past every entry a row may skip (its self, its neighbourhood)
        let mostSkipped = 0;
        for (let r = 0; r < rows; r++) {
          for (let d = 0, o = (i0 + r) * dim, w = r * dim; d < dim; d++, o++, w++) block[w] = embeddings[o]! - mean32[d]!;
          if (near) mostSkipped = Math.max(mostSkipped, near(exclude!.positions[i0 + r]!));
        }
        const K = Math.min(m, keep + mostSkipped + (selfIndex ? 1 : 0));
        // many skipped entries (a sample dense around each query): the whole block, scanned here
        const whole = K > TOPK_MAX;
        const result = await session.run({
          queries: new ort.Tensor('float32', block.subarray(0, rows * dim), [rows, dim]),
          candidates: new ort.Tensor('int64', BigInt64Array.of(BigInt(whole ? 1 : K)), [1]),
        }, [whole ? 'partial' : 'indices']);
        const indices = whole ? null : result.indices!.data as BigInt64Array;
        const partial = whole ? result.partial!.data as Float32Array : null;
        for (let r = 0; r < rows; r++) {
          const i = i0 + r;
          const skip = selfIndex ? selfIndex(i) : -1;
          let qc = 0, qr = 0;
          if (exclude) { const p = exclude.positions[i]!; qc = p & 0xffff; qr = p >>> 16; }
          const skipped = (j: number) => {
            if (j === skip) return true;
            if (radius < 0) return false;
            const p = exclude!.bankPositions[j]!;
            return Math.abs((p & 0xffff) - qc) <= radius && Math.abs((p >>> 16) - qr) <= radius;
          };
          let found = 0;
          if (indices) {
            for (let t = 0, o = r * K; t < K && found < keep; t++, o++) {
              const j = Number(indices[o]!);
              if (!skipped(j)) bestAt[found++] = j;
            }
          } else {
            best.fill(Infinity);
            let worst = Infinity;
            for (let j = 0, o = r * m; j < m; j++, o++) {
              const v = partial![o]!;
              if (!(v < worst) || skipped(j)) continue;
              let t = Math.min(found, keep - 1);
              while (t > 0 && best[t - 1]! > v) { best[t] = best[t - 1]!; bestAt[t] = bestAt[t - 1]!; t--; }
              best[t] = v;
              bestAt[t] = j;
              if (found < keep) found++;
              worst = best[keep - 1]!;
            }
          }
          // the f32 block only chooses candidates: their distances again in f64, the best kk of them
          best.fill(Infinity);
          for (let t = 0; t < found; t++) {
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

/** The bank less its mean (f32, as the graph holds it) and the centred rows' squared norms. */
function centre(data: Float32Array, m: number, dim: number): { mean32: Float32Array; centred: Float32Array; norms: Float32Array } {
  const mean = new Float64Array(dim);
  for (let j = 0, o = 0; j < m; j++) for (let d = 0; d < dim; d++, o++) mean[d] += data[o]!;
  for (let d = 0; d < dim; d++) mean[d] /= Math.max(1, m);
  const mean32 = Float32Array.from(mean);
  const centred = new Float32Array(m * dim);
  const norms = new Float32Array(m);
  for (let j = 0, o = 0; j < m; j++) {
    let s = 0;
    for (let d = 0; d < dim; d++, o++) {
      const v = Math.fround(data[o]! - mean32[d]!);
      centred[o] = v;
      s += v * v;
    }
    norms[j] = s;
  }
  return { mean32, centred, norms };
}

function int64Info(name: string, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: { tensorType: { elemType: DataType.INT64, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
}

/**
 * An upper bound on the bank entries within `radius` cells (Chebyshev) of a position: entries
 * bucketed on a grid of (radius + 1)-cell squares, a window meets at most 3 × 3 of them.
 */
function nearCounter(bankPositions: Uint32Array, radius: number): (position: number) => number {
  const side = radius + 1;
  let cols = 1, rows = 1;
  for (const p of bankPositions) { cols = Math.max(cols, Math.floor((p & 0xffff) / side) + 1); rows = Math.max(rows, Math.floor((p >>> 16) / side) + 1); }
  const counts = new Int32Array(cols * rows);
  for (const p of bankPositions) counts[Math.floor((p >>> 16) / side) * cols + Math.floor((p & 0xffff) / side)]!++;
  return (position) => {
    const c = position & 0xffff, r = position >>> 16;
    const c0 = Math.max(0, Math.floor((c - radius) / side)), c1 = Math.min(cols - 1, Math.floor((c + radius) / side));
    const r0 = Math.max(0, Math.floor((r - radius) / side)), r1 = Math.min(rows - 1, Math.floor((r + radius) / side));
    let n = 0;
    for (let y = r0; y <= r1; y++) for (let x = c0; x <= c1; x++) n += counts[y * cols + x]!;
    return n;
  };
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
