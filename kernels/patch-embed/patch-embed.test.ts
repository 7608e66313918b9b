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

  // Byte tiles through the normalisation table: the same output, bit for bit, as the f32 path fed
  // the table's values (odd image count, patch 14).
  for (const precision of ['f32', 'f16'] as const) {
    it(`${precision} byte input equals the f32 path`, async () => {
      const [images, size, P, D] = [3, 42, 14, 24];
      const pe = await PatchEmbed.create(ctx, { precision, patchSize: P, dim: D });
      const table = randomUniform(768, 11);
      const rgb = Uint8Array.from({ length: images * size * size * 3 }, (_, i) => (i * 131 + (i >> 7)) & 255);
      const planar = new Float32Array(rgb.length);
      for (let b = 0; b < images; b++) for (let c = 0; c < 3; c++) for (let p = 0; p < size * size; p++) {
        planar[(b * 3 + c) * size * size + p] = table[c * 256 + rgb[(b * size * size + p) * 3 + c]!]!;
      }
      const w = uploadTensor(ctx, roundTo(randomUniform(3 * P * P * D, 12, 0.05), precision), precision);
      const bb = uploadTensor(ctx, roundTo(randomUniform(D, 13, 0.1), precision), precision);
      const run = async (px: GPUBuffer, t?: GPUBuffer) => {
        const cols = ctx.device.createBuffer({ size: Math.ceil(im2colBytes(images, size, P, precision) / 4) * 4, usage: GPUBufferUsage.STORAGE });
        const out = guardedOutput(ctx, images * (size / P) ** 2 * D, precision);
        const ds = pe.prepare(images, size, { pixels: px, weight: w, bias: bb, cols, out, ...(t ? { table: t } : {}) });
        const enc = ctx.device.createCommandEncoder();
        const pass = enc.beginComputePass();
        for (const d of ds) recordDispatch(pass, d);
        pass.end();
        ctx.device.queue.submit([enc.finish()]);
        const got = await readGuarded(ctx, out, images * (size / P) ** 2 * D, precision);
        ds.forEach(destroyDispatch);
        cols.destroy(); out.destroy();
        return got;
      };
      const padded = new Uint8Array(Math.ceil(rgb.length / 4) * 4);
      padded.set(rgb);
      const px8 = ctx.upload(padded, GPUBufferUsage.STORAGE), tb = ctx.upload(table, GPUBufferUsage.STORAGE), px32 = ctx.upload(planar, GPUBufferUsage.STORAGE);
      assert.deepEqual(await run(px8, tb), await run(px32));
      for (const b of [px8, tb, px32, w, bb]) b.destroy();
      pe.destroy();
    });
  }
});
