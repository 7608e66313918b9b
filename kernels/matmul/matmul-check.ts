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

/**
 * Times `reps` back-to-back dispatches of one GEMM on random inputs: GPU time of the pass from
 * timestamp queries where the adapter has them (wall time around a queue drain adds the host's
 * polling latency, which swamped ~1 ms GEMMs on the H200), else wall time. Median of 3, ms per dispatch.
 */
export async function timeMatmul(ctx: GpuContext, c: { M: number; N: number; K: number; gelu?: boolean; residual?: boolean; spec?: string; reps: number }): Promise<{ ms: number; kernel: string; gpuTime: boolean }> {
  const { M, N, K } = c;
  const mm = await Matmul.create(ctx, { precision: 'f16', N, K, gelu: c.gelu, residual: c.residual, spec: c.spec });
  const bufs = [randomUniform(M * K, 1, 1), randomUniform(K * N, 2, 0.03), randomUniform(N, 3, 0.1), randomUniform(M * N, 4, 1)].map((v) => uploadTensor(ctx, v, 'f16'));
  const gpuTime = ctx.capabilities.timestampQuery;
  try {
    const d = mm.prepare({ M, N, K }, { x: bufs[0]!, w: bufs[1]!, bias: bufs[2]!, out: bufs[3]! });
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
    await run();
    const times: number[] = [];
    for (let i = 0; i < 3; i++) times.push((await run()) / c.reps);
    destroyDispatch(d);
    return { ms: times.sort((a, b) => a - b)[1]!, kernel: mm.name, gpuTime };
  } finally {
    for (const b of bufs) b.destroy();
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
