// Patch embedding (im2col + GEMM) vs a direct float64 convolution: patch 8 and 14 (3·P·P = 588,
// not a multiple of 8), odd grids, several images. f32 ≤ 1e-5, f16 ≤ 3e-3 relative (f16 columns
// and output; the twin sees the f16-rounded pixels and weights). Output NaN-poisoned and guarded.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GpuContext } from '../gpu/gpu-context.ts';
import { guardedOutput, randomUniform, readGuarded, roundTo, uploadTensor } from '../dispatch/check.ts';
import { destroyDispatch, recordDispatch } from '../dispatch/dispatch.ts';
import { relativeError } from '../matmul/matmul.cpu.ts';
import { convWeightToGemm, im2colBytes, PatchEmbed } from './patch-embed.ts';
import { patchEmbedCpu } from './patch-embed.cpu.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

describe('patch-embed kernel', () => {
  let ctx: GpuContext;
  before(async () => { ctx = await GpuContext.create(); });
  after(async () => { await ctx?.destroy(); });
  for (const precision of ['f32', 'f16'] as const) {
    for (const [images, size, P, D] of [[1, 8, 8, 16], [3, 40, 8, 24], [2, 42, 14, 40]] as const) {
      it(`${precision} ${images}×${size}px patch ${P} → D=${D}`, async () => {
        const pe = await PatchEmbed.create(ctx, { precision, patchSize: P, dim: D });
        const pixels = roundTo(randomUniform(images * 3 * size * size, size + P), precision);
        const weight = roundTo(randomUniform(D * 3 * P * P, 2, 1 / Math.sqrt(3 * P * P)), precision);
        const bias = roundTo(randomUniform(D, 3, 0.1), precision);
        const rows = images * (size / P) ** 2;
        const px = ctx.upload(pixels, GPUBufferUsage.STORAGE);
        const w = uploadTensor(ctx, convWeightToGemm(weight, D, P), precision);
        const bb = uploadTensor(ctx, bias, precision);
        const cols = ctx.device.createBuffer({ size: Math.ceil(im2colBytes(images, size, P, precision) / 4) * 4, usage: GPUBufferUsage.STORAGE });
        const out = guardedOutput(ctx, rows * D, precision);
        const ds = pe.prepare(images, size, { pixels: px, weight: w, bias: bb, cols, out });
        const enc = ctx.device.createCommandEncoder();
        const pass = enc.beginComputePass();
        for (const d of ds) recordDispatch(pass, d);
        pass.end();
        ctx.device.queue.submit([enc.finish()]);
        const got = await readGuarded(ctx, out, rows * D, precision);
        ds.forEach(destroyDispatch);
        for (const b of [px, w, bb, cols, out]) b.destroy();
        pe.destroy();
        const err = relativeError(got, patchEmbedCpu(pixels, images, size, P, weight, bias, D));
        assert.ok(err <= (precision === 'f32' ? 1e-5 : 3e-3), `relative error ${err}`);
      });
    }
  }
});
