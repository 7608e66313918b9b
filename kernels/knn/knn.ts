/**
 * k-nearest-neighbour scores against a memory bank on WebGPU (PatchCore's anomaly score: mean
 * Euclidean distance to the k nearest bank entries), the GPU twin of src/scoring/knn.ts for banks
 * up to ~10⁶ entries: the bank is uploaded once (f32), queries go in batches; a tiled distance
 * kernel keeps per-chunk top-k lists and a merge kernel reduces them (see knn.wgsl). k ≤ 8.
 * @example
 *   const knn = await KnnSearch.create(ctx, bank);
 *   const { scores } = await knn.search(embeddings, n, 1);
 */
import { readFileSync } from 'node:fs';
import { invalidParameter, InvalidParameterError } from '../../src/errors.ts';
import type { GpuContext } from '../gpu/gpu-context.ts';
import { uniformWords } from '../dispatch/dispatch.ts';

/** Largest k the kernel keeps. */
export const KNN_MAX_K = 8;
const QT = 32;
const LISTS = 8;

export interface KnnBank {
  dim: number;
  count: number;
  data: Float32Array;
  /** Grid position of each entry (col | row << 16), for `search`'s `exclude`. */
  positions?: Uint32Array;
}
export interface KnnResult {
  /** Mean √distance over the k nearest (the CPU scorer's value). */
  scores: Float64Array;
  /** [n, k] bank indices, nearest first. */
  indices: Uint32Array;
  /** [n, k] squared distances. */
  distances: Float32Array;
}

let template: string | undefined;

export class KnnSearch {
  private constructor(readonly ctx: GpuContext, readonly bank: { dim: number; count: number }, private readonly bankBuffer: GPUBuffer,
    private readonly partial: GPUComputePipeline, private readonly merge: GPUComputePipeline, private readonly bankPos: GPUBuffer | null) {}

  /** Uploads the bank and compiles the kernels. */
  static async create(ctx: GpuContext, bank: KnnBank): Promise<KnnSearch> {
    if (!Number.isInteger(bank.dim) || bank.dim < 1) throw invalidParameter('bank.dim', 'positive integer', bank.dim);
    if (!Number.isInteger(bank.count) || bank.count < 1 || bank.data.length !== bank.count * bank.dim) throw invalidParameter('bank.data.length', `${bank.count} × ${bank.dim}`, bank.data.length);
    if (bank.data.byteLength > ctx.device.limits.maxStorageBufferBindingSize) {
      throw new InvalidParameterError(`bank of ${bank.count} × ${bank.dim} f32 (${bank.data.byteLength} bytes) exceeds this adapter's ${ctx.device.limits.maxStorageBufferBindingSize}-byte storage binding`);
    }
    template ??= readFileSync(new URL('knn.wgsl', import.meta.url), 'utf8');
    const code = template.replaceAll('{{OPAQUE}}', ctx.capabilities.cpu ? '1' : '0');
    const [partial, merge] = await Promise.all([ctx.pipeline(`knn/partial-${ctx.capabilities.cpu}`, code, 'knn_partial'), ctx.pipeline(`knn/merge-${ctx.capabilities.cpu}`, code, 'knn_merge')]);
    if (bank.positions && bank.positions.length !== bank.count) throw invalidParameter('bank.positions.length', String(bank.count), bank.positions.length);
    const pos = bank.positions ? ctx.upload(bank.positions, GPUBufferUsage.STORAGE, 'knn-bank-pos') : null;
    return new KnnSearch(ctx, { dim: bank.dim, count: bank.count }, ctx.upload(bank.data, GPUBufferUsage.STORAGE, 'knn-bank'), partial, merge, pos);
  }

  /**
   * Scores `n` queries ([n, dim] f32) by their `k` nearest bank entries; with `selfOffset`, query i
   * never matches bank entry selfOffset + i; with `exclude`, query i never matches an entry whose
   * position (the bank's `positions`) is within `radius` cells of `exclude.positions[i]`.
   */
  async search(queries: Float32Array, n: number, k: number, options: { selfOffset?: number; exclude?: { positions: Uint32Array; radius: number } } = {}): Promise<KnnResult> {
    const { dim, count: m } = this.bank;
    if (queries.length !== n * dim) throw invalidParameter('queries.length', `${n} × ${dim}`, queries.length);
    const kk = Math.max(1, Math.min(k, options.selfOffset !== undefined ? m - 1 : m));
    if (!Number.isInteger(k) || k < 1 || kk > KNN_MAX_K) throw invalidParameter('k', `integer 1..${KNN_MAX_K}`, k);
    const ex = options.exclude;
    if (ex && (!this.bankPos || ex.positions.length !== n || !(Number.isInteger(ex.radius) && ex.radius >= 0 && ex.radius < 65536))) {
      throw invalidParameter('exclude', `${n} query positions and a radius in 0..65535, with a bank that has positions`, ex.positions.length);
    }
    const out: KnnResult = { scores: new Float64Array(n), indices: new Uint32Array(n * kk), distances: new Float32Array(n * kk) };
    const batch = 65536;
    for (let s = 0; s < n; s += batch) {
      const c = Math.min(batch, n - s);
      const self = options.selfOffset === undefined ? 0xffffffff : options.selfOffset + s;
      const qpos = ex ? { positions: ex.positions.subarray(s, s + c), radius: ex.radius } : undefined;
      const r = await this.runBatch(queries.subarray(s * dim, (s + c) * dim), c, kk, self, qpos);
      for (let i = 0; i < c; i++) out.scores[s + i] = r.score[i]!;
      out.indices.set(r.idx, s * kk);
      out.distances.set(r.dist, s * kk);
    }
    return out;
  }

  private async runBatch(queries: Float32Array, n: number, k: number, selfOffset: number, exclude?: { positions: Uint32Array; radius: number }) {
    const { dim, count: m } = this.bank;
    const dev = this.ctx.device;
    const qTiles = Math.ceil(n / QT);
    // enough workgroups to fill a large GPU, partial lists bounded to ~256 MB
    const maxChunks = Math.max(1, Math.floor((256 << 20) / (n * LISTS * 8 * 8)));
    const chunks = Math.max(1, Math.min(Math.ceil(4096 / qTiles), Math.ceil(m / 64), maxChunks, 65535));
    const chunk = Math.ceil(m / chunks / 64) * 64;
    const realChunks = Math.ceil(m / chunk);
    const uniform = uniformWords(dev, [n, m, dim, k, chunk, realChunks, selfOffset, 0, exclude ? exclude.radius : 0xffffffff, 0, 0, 0]);
    const q = this.ctx.upload(queries, GPUBufferUsage.STORAGE, 'knn-queries');
    // without exclusion the position bindings get a placeholder the kernel never reads
    const qpos = this.ctx.upload(exclude ? exclude.positions : new Uint32Array(4), GPUBufferUsage.STORAGE, 'knn-query-pos');
    const bpos = this.bankPos ?? qpos;
    const storage = (bytes: number, extra = 0) => dev.createBuffer({ size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: GPUBufferUsage.STORAGE | extra });
    const partD = storage(n * realChunks * LISTS * KNN_MAX_K * 4), partI = storage(n * realChunks * LISTS * KNN_MAX_K * 4);
    const outD = storage(n * k * 4, GPUBufferUsage.COPY_SRC), outI = storage(n * k * 4, GPUBufferUsage.COPY_SRC), score = storage(n * 4, GPUBufferUsage.COPY_SRC);
    const bind = (pipeline: GPUComputePipeline, entries: Array<[number, GPUBuffer]>) => dev.createBindGroup({
      layout: pipeline.getBindGroupLayout(0), entries: entries.map(([binding, buffer]) => ({ binding, resource: { buffer } })),
    });
    try {
      const enc = dev.createCommandEncoder({ label: 'knn' });
      const pass = enc.beginComputePass();
      pass.setPipeline(this.partial);
      pass.setBindGroup(0, bind(this.partial, [[0, uniform], [1, q], [2, this.bankBuffer], [3, partD], [4, partI], [8, qpos], [9, bpos]]));
      pass.dispatchWorkgroups(qTiles, realChunks);
      pass.setPipeline(this.merge);
      pass.setBindGroup(0, bind(this.merge, [[0, uniform], [3, partD], [4, partI], [5, outD], [6, outI], [7, score]]));
      const groups = Math.ceil(n / 64);
      pass.dispatchWorkgroups(Math.min(groups, 65535), Math.ceil(groups / 65535));
      pass.end();
      dev.queue.submit([enc.finish()]);
      const [d, i, s] = await Promise.all([this.ctx.read(outD, 0, n * k * 4), this.ctx.read(outI, 0, n * k * 4), this.ctx.read(score, 0, n * 4)]);
      return { dist: new Float32Array(d), idx: new Uint32Array(i), score: new Float32Array(s) };
    } finally {
      for (const b of [uniform, q, qpos, partD, partI, outD, outI, score]) b.destroy();
    }
  }

  destroy(): void { this.bankBuffer.destroy(); this.bankPos?.destroy(); }
}
