/**
 * GEMM tilings of the subgroup-matrix kernel on the ViT-B/16 shapes (issue 7), and attention at tile
 * length as batched GEMMs vs our flash-attention kernel. Every tiling is first checked against
 * the float64 CPU twin on fresh random inputs (bound 2e-3) on shapes where its direct-W path is
 * and is not taken; then each block GEMM (M = 64 × 197 rows) is timed as `--reps` back-to-back
 * dispatches in one pass, GPU time from timestamp queries, median of three. The fastest correct
 * tiling is written to `--out`. Attention timings are one pass per call, also by timestamps.
 *
 *   node --import tsx bench/encoder-gemm.ts [--specs 128x128x32-sg4x2-s1,…] [--reps 20] [--out FILE]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GpuContext } from '../kernels/gpu/gpu-context.ts';
import { checkMatmul, timeMatmul } from '../kernels/matmul/matmul-check.ts';
import { DEFAULT_GEMM_SPEC } from '../kernels/matmul/matmul.ts';
import { GemmAttention } from '../kernels/matmul/gemm-attention.ts';
import { checkGemmAttention } from '../kernels/matmul/gemm-attention-check.ts';
import { FlashAttention } from '../kernels/flash-attention/flash-attention.ts';
import { randomUniform, uploadTensor } from '../kernels/dispatch/check.ts';
import { recordDispatch } from '../kernels/dispatch/dispatch.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const { values } = parseArgs({ options: { specs: { type: 'string' }, reps: { type: 'string' }, out: { type: 'string' }, images: { type: 'string' } } });
const specs = (values.specs ?? [DEFAULT_GEMM_SPEC, '128x128x32-sg4x2-s2', '128x128x32-sg4x2-s1-wd', '128x128x32-sg4x2-s2-wd',
  '128x128x32-sg2x2-s2', '128x128x32-sg2x2-s2-wd', '128x256x32-sg2x4-s2-wd', '256x128x32-sg4x2-s2-wd', '64x128x32-sg2x2-s2-wd', '128x128x64-sg4x2-s2-wd'].join(',')).split(',');
const reps = Number(values.reps ?? 20);
const images = Number(values.images ?? 64);
const D = 768, H = 3072, S = 197, M = images * S;
const shapes = [
  { name: 'qkv', N: 3 * D, K: D }, { name: 'proj+res', N: D, K: D, residual: true },
  { name: 'fc1+gelu', N: H, K: D, gelu: true }, { name: 'fc2+res', N: D, K: H, residual: true },
];
const blockFlop = shapes.reduce((a, s) => a + 2 * M * s.N * s.K, 0);

const ctx = await GpuContext.create();
console.log(`${ctx.describe()}; workgroup memory ${ctx.device.limits.maxComputeWorkgroupStorageSize} B; M = ${M} rows`);
const rows: { spec: string; err: number; ms: number[]; block: number }[] = [];
for (const [si, spec] of specs.entries()) {
  try {
    let err = 0;
    for (const [i, c] of [{ M: 300, N: 384, K: 256, gelu: true }, { M: 129, N: 256, K: 512, residual: true, layerScale: true }, { M: 77, N: 72, K: 40 }].entries()) {
      const r = await checkMatmul(ctx, { ...c, precision: 'f16', spec, seed: 1000 + 10 * si + i });
      err = Math.max(err, r.error);
    }
    const ms: number[] = [];
    for (const s of shapes) ms.push((await timeMatmul(ctx, { M, ...s, spec, reps })).ms);
    const block = ms.reduce((a, b) => a + b, 0);
    rows.push({ spec, err, ms, block });
    console.log(`${spec}: max rel. error ${err.toExponential(2)}; ${shapes.map((s, i) => `${s.name} ${ms[i]!.toFixed(3)} ms (${(2 * M * s.N * s.K / ms[i]! / 1e9).toFixed(1)} TF/s)`).join(', ')}; block ${block.toFixed(2)} ms = ${(blockFlop / block / 1e9).toFixed(1)} TF/s, ×12 = ${(12 * block).toFixed(1)} ms per forward`);
  } catch (err) {
    console.log(`${spec}: ${(err as Error).message.split('\n')[0]}`);
  }
}
const ok = rows.filter((r) => r.err <= 2e-3).sort((a, b) => a.block - b.block);
console.log('\n| tiling | max rel. error | qkv ms | proj ms | fc1 ms | fc2 ms | 12 blocks ms | TF/s |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of [...rows].sort((a, b) => a.block - b.block)) console.log(`| ${r.spec} | ${r.err.toExponential(1)} | ${r.ms.map((x) => x.toFixed(3)).join(' | ')} | ${(12 * r.block).toFixed(1)} | ${(blockFlop / r.block / 1e9).toFixed(1)} |`);
const best = ok[0]?.spec ?? DEFAULT_GEMM_SPEC;
console.log(`best correct tiling: ${best}`);
if (values.out) writeFileSync(values.out, best);

// Attention at tile length: one call over the batch (12 per forward).
const heads = 12, hd = 64;
const qkv = uploadTensor(ctx, randomUniform(M * 3 * D, 5, 1), 'f16');
const att = ctx.device.createBuffer({ size: M * D * 2, usage: GPUBufferUsage.STORAGE });
const timeRuns = async (record: (pass: GPUComputePassEncoder) => void, n: number) => {
  const stamps = ctx.capabilities.timestampQuery;
  const go = async () => {
    const enc = ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass(stamps ? { timestampWrites: ctx.timer.passTimestamps() } : {});
    for (let i = 0; i < n; i++) record(pass);
    pass.end();
    const t0 = performance.now();
    ctx.device.queue.submit([enc.finish()]);
    if (stamps) return (await ctx.timer.read())[0]! / 1e6 / n;
    await ctx.sync();
    return (performance.now() - t0) / n;
  };
  await go();
  const t: number[] = [];
  for (let i = 0; i < 3; i++) t.push(await go());
  return t.sort((a, b) => a - b)[1]!;
};
for (const spec of new Set([best, DEFAULT_GEMM_SPEC])) {
  const ga = await GemmAttention.create(ctx, { headDim: hd, precision: 'f16', spec });
  const err = await checkGemmAttention(ctx, ga, { images: 3, heads: 4, seq: S }, 77);
  const plan = ga.plan({ images, heads, seq: S }, qkv, att);
  const ms = await timeRuns((pass) => plan.dispatches.forEach((d) => recordDispatch(pass, d)), 10);
  console.log(`attention as GEMMs (${ga.name}), ${images}×${heads}×${S}²: ${ms.toFixed(3)} ms per call (×12 = ${(12 * ms).toFixed(1)} ms per forward); vs CPU reference ${err.toExponential(2)}`);
  plan.destroy();
  ga.destroy();
}
for (const path of ['auto', 'portable'] as const) {
  const fa = await FlashAttention.create(ctx, { headDim: hd, precision: 'f16', path });
  // flash-attention opens its own pass per call: one timestamp pair per call when available.
  const shape = { batch: images, heads, seqQ: S, seqK: S, headDim: hd };
  const views = { q: { buffer: qkv, offset: 0, rowStride: 3 * D }, k: { buffer: qkv, offset: D, rowStride: 3 * D }, v: { buffer: qkv, offset: 2 * D, rowStride: 3 * D }, out: { buffer: att } };
  const once = async () => {
    const stamps = ctx.capabilities.timestampQuery;
    const enc = ctx.device.createCommandEncoder();
    for (let i = 0; i < 5; i++) fa.encode(enc, shape, views, stamps ? { timestampWrites: ctx.timer.passTimestamps() } : {});
    const t0 = performance.now();
    ctx.device.queue.submit([enc.finish()]);
    if (stamps) return (await ctx.timer.read()).reduce((a, b) => a + b, 0) / 1e6 / 5;
    await ctx.sync();
    return (performance.now() - t0) / 5;
  };
  await once();
  const ms = [await once(), await once(), await once()].sort((a, b) => a - b)[1]!;
  console.log(`flash attention (${fa.name}, path ${path}): ${ms.toFixed(3)} ms per call (×12 = ${(12 * ms).toFixed(1)} ms per forward)`);
  fa.destroy();
}
qkv.destroy();
att.destroy();
await ctx.destroy();
