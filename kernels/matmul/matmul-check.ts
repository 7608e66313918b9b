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

export interface MatmulCase { M: number; N: number; K: number; gelu?: boolean; residual?: boolean; layerScale?: boolean; precision: Precision; path?: 'auto' | 'portable' | 'subgroup-matrix'; seed: number }

export async function checkMatmul(ctx: GpuContext, c: MatmulCase): Promise<{ error: number; kernel: string }> {
  const { M, N, K, precision } = c;
  const r = (n: number, s: number, a: number) => roundTo(randomUniform(n, c.seed * 7 + s, a), precision);
  const x = r(M * K, 1, 1), w = r(K * N, 2, 1 / Math.sqrt(K)), bias = r(N, 3, 0.5), gamma = c.layerScale ? r(N, 4, 1) : undefined;
  const init = c.residual ? r(M * N, 5, 1) : undefined;
  const mm = await Matmul.create(ctx, { precision, N, K, gelu: c.gelu, residual: c.residual, path: c.path });
  const bufs = [uploadTensor(ctx, x, precision), uploadTensor(ctx, w, precision), uploadTensor(ctx, bias, precision), gamma ? uploadTensor(ctx, gamma, precision) : undefined];
  const out = guardedOutput(ctx, M * N, precision, init);
  try {
    const d = mm.prepare({ M, N, K }, { x: bufs[0]!, w: bufs[1]!, bias: bufs[2]!, gamma: bufs[3], out });
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    recordDispatch(pass, d);
    pass.end();
    ctx.device.queue.submit([enc.finish()]);
    const got = await readGuarded(ctx, out, M * N, precision);
    destroyDispatch(d);
    const ref = matmulCpu({ M, N, K, x, w, bias, gamma, gelu: c.gelu, residual: c.residual }, init);
    return { error: relativeError(got, ref), kernel: mm.name };
  } finally {
    for (const b of [...bufs, out]) b?.destroy();
    mm.destroy();
  }
}
