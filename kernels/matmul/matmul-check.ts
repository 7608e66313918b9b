/**
 * One checked GEMM call on fresh random inputs, shared by the test and the device check: inputs
 * rounded to the storage precision, output poisoned (or holding the residual) with a guard
 * region, CPU twin in float64, relative error (Infinity on NaN).
 */
import type { GpuContext } from '../gpu/gpu-context.ts';
import { guardedOutput, randomUniform, readGuarded, roundTo, uploadTensor, type Precision } from '../dispatch/check.ts';
import { recordDispatch, destroyDispatch } from '../dispatch/dispatch.ts';
import { Matmul } from './matmul.ts';
import { matmulCpu, relativeError } from './matmul.cpu.ts';

export interface MatmulCase { M: number; N: number; K: number; gelu?: boolean; residual?: boolean; layerScale?: boolean; precision: Precision; path?: 'auto' | 'portable' | 'subgroup-matrix'; seed: number;
  /** W uploaded as [N, K]; f32 output; a tiling spec for the subgroup-matrix path. */
  transposeW?: boolean; outF32?: boolean; spec?: string }

/** Inputs of a timed GEMM, allocated once for the largest shape and shared across tilings. */
export interface TimingBuffers { x: GPUBuffer; w: GPUBuffer; bias: GPUBuffer; out: GPUBuffer }

/** Random f16 inputs big enough for every M×N×K with M·K ≤ mk, K·N ≤ kn, M·N ≤ mn. */
export function timingBuffers(ctx: GpuContext, mk: number, kn: number, mn: number, n: number): TimingBuffers {
  const [x, w, bias, out] = [randomUniform(mk, 1, 1), randomUniform(kn, 2, 0.03), randomUniform(n, 3, 0.1), randomUniform(mn, 4, 1)].map((v) => uploadTensor(ctx, v, 'f16'));
  return { x: x!, w: w!, bias: bias!, out: out! };
}

/**
 * Times `reps` back-to-back dispatches of one GEMM: GPU time of one compute pass holding only those
 * dispatches (timestamp queries; wall time around a queue drain where the adapter has none, which
 * adds the host's polling latency). The GPU is first kept busy for `warmMs` of its own time (its
 * clocks drop while the host prepares inputs or checks: a first sample after a pause read 2–5× slow
 * on the H200), then `samples` passes are timed. ms per dispatch: median, min, max.
 */
export async function timeMatmul(ctx: GpuContext, c: { M: number; N: number; K: number; gelu?: boolean; residual?: boolean; spec?: string; reps: number; samples?: number; warmMs?: number; buffers?: TimingBuffers }): Promise<{ ms: number; min: number; max: number; kernel: string; gpuTime: boolean }> {
  const { M, N, K } = c;
  const mm = await Matmul.create(ctx, { precision: 'f16', N, K, gelu: c.gelu, residual: c.residual, spec: c.spec });
  const own = c.buffers ? undefined : timingBuffers(ctx, M * K, K * N, M * N, N);
  const b = c.buffers ?? own!;
  const gpuTime = ctx.capabilities.timestampQuery;
  try {
    const d = mm.prepare({ M, N, K }, { x: b.x, w: b.w, bias: b.bias, out: b.out });
    const run = async (): Promise<number> => {
      const enc = ctx.device.createCommandEncoder();
      const pass = enc.beginComputePass(gpuTime ? { timestampWrites: ctx.timer.passTimestamps() } : {});
      for (let i = 0; i < c.reps; i++) recordDispatch(pass, d);
      pass.end();
      const t0 = performance.now();
      ctx.device.queue.submit([enc.finish()]);
      if (gpuTime) return (await ctx.timer.read())[0]! / 1e6;
      await ctx.sync();
      return performance.now() - t0;
    };
    const warmMs = c.warmMs ?? 200;
    for (let spent = 0, n = 0; n < 2 || spent < warmMs; n++) spent += await run();
    const times: number[] = [];
    for (let i = 0; i < (c.samples ?? 5); i++) times.push((await run()) / c.reps);
    destroyDispatch(d);
    times.sort((a, b) => a - b);
    return { ms: times[times.length >> 1]!, min: times[0]!, max: times[times.length - 1]!, kernel: mm.name, gpuTime };
  } finally {
    if (own) for (const x of Object.values(own)) x.destroy();
    mm.destroy();
  }
}

export async function checkMatmul(ctx: GpuContext, c: MatmulCase): Promise<{ error: number; kernel: string }> {
  const { M, N, K, precision } = c;
  const r = (n: number, s: number, a: number) => roundTo(randomUniform(n, c.seed * 7 + s, a), precision);
  const x = r(M * K, 1, 1), w = r(K * N, 2, 1 / Math.sqrt(K)), bias = r(N, 3, 0.5), gamma = c.layerScale ? r(N, 4, 1) : undefined;
  const init = c.residual ? r(M * N, 5, 1) : undefined;
  const mm = await Matmul.create(ctx, { precision, N, K, gelu: c.gelu, residual: c.residual, path: c.path, transposeW: c.transposeW, outF32: c.outF32, spec: c.spec });
  const outPrecision: Precision = c.outF32 ? 'f32' : precision;
  let wUp = w;
  if (c.transposeW) {
    wUp = new Float32Array(K * N);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) wUp[n * K + k] = w[k * N + n]!;
  }
  const bufs = [uploadTensor(ctx, x, precision), uploadTensor(ctx, wUp, precision), uploadTensor(ctx, bias, precision), gamma ? uploadTensor(ctx, gamma, precision) : undefined];
  const out = guardedOutput(ctx, M * N, outPrecision, init);
  try {
    const d = mm.prepare({ M, N, K }, { x: bufs[0]!, w: bufs[1]!, bias: bufs[2]!, gamma: bufs[3], out });
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    recordDispatch(pass, d);
    pass.end();
    ctx.device.queue.submit([enc.finish()]);
    const got = await readGuarded(ctx, out, M * N, outPrecision);
    destroyDispatch(d);
    const ref = matmulCpu({ M, N, K, x, w, bias, gamma, gelu: c.gelu, residual: c.residual }, init);
    return { error: relativeError(got, ref), kernel: mm.name };
  } finally {
    for (const b of [...bufs, out]) b?.destroy();
    mm.destroy();
  }
}
