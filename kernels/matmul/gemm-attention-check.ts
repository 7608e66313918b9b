/**
 * One checked GEMM-attention call on fresh random packed QKV against the float64 CPU twin of
 * flash attention (same function): shared by the test, the engine's self-check and the bench.
 */
import type { GpuContext } from '../gpu/gpu-context.ts';
import { guardedOutput, randomUniform, readGuarded, roundTo, uploadTensor } from '../dispatch/check.ts';
import { recordDispatch } from '../dispatch/dispatch.ts';
import { attentionCpu } from '../flash-attention/flash-attention.cpu.ts';
import { relativeError } from './matmul.cpu.ts';
import type { GemmAttention, GemmAttentionShape } from './gemm-attention.ts';

export async function checkGemmAttention(ctx: GpuContext, ga: GemmAttention, shape: GemmAttentionShape, seed: number): Promise<number> {
  const { images, heads, seq } = shape;
  const hd = ga.options.headDim, D = heads * hd, precision = ga.options.precision;
  // Amplitude 2 gives logits of a few units: a softmax that is neither flat nor one-hot.
  const qkv = roundTo(randomUniform(images * seq * 3 * D, seed, 2), precision);
  const part = (o: number) => {
    const t = new Float32Array(images * seq * D);
    for (let r = 0; r < images * seq; r++) t.set(qkv.subarray(r * 3 * D + o, r * 3 * D + o + D), r * D);
    return t;
  };
  const input = uploadTensor(ctx, qkv, precision);
  const out = guardedOutput(ctx, images * seq * D, precision);
  const plan = ga.plan(shape, input, out);
  try {
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass();
    plan.dispatches.forEach((d) => recordDispatch(pass, d));
    pass.end();
    ctx.device.queue.submit([enc.finish()]);
    const got = await readGuarded(ctx, out, images * seq * D, precision);
    const ref = attentionCpu({ batch: images, heads, seqQ: seq, seqK: seq, headDim: hd }, { q: part(0), k: part(D), v: part(2 * D) });
    return relativeError(got, ref);
  } finally {
    plan.destroy();
    input.destroy();
    out.destroy();
  }
}
