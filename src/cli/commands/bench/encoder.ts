/**
 * `lamina bench encoder`: tiles/s of a ViT encoder. `--engine webgpu` runs our WebGPU engine
 * (WebGpuVitEncoder): end to end through `embed` (f32 pixels up, embeddings back, median of
 * --reps batches, each awaited), sustained end to end (`--stream N` batches with two in flight, the
 * next uploaded and submitted while the GPU computes the one before: tiles/s over the whole stream,
 * from f32 and from RGB bytes) and GPU-resident (the same forward replayed back to back, no host transfers),
 * plus regions/s for native-resolution regions (`--regions 1024,2048`: one sequence of (R/P)²
 * tokens each, patch tokens read back). `--engine ort` times OrtEncoder on `--ep` (cpu or webgpu);
 * run it as a separate process from the webgpu engine (ORT links its own Dawn). `--check` first
 * runs the GEMM kernel against its CPU twin on awkward shapes and the engine against ORT's CPU EP
 * on two tiles (cosine per embedding). `--attention flash,gemm` times the engine once per attention
 * mode (webgpu-vit-model.ts `attention`), `--gemm SPEC` sets the GEMM tiling (kernels/matmul).
 */
import { writeFileSync } from 'node:fs';
import { parseFlags, numberFlag } from '../../args.ts';
import { invalidParameter } from '../../../errors.ts';
import type { Command } from '../../main.ts';
import { resolveModel } from '../../../encoder/model-store.ts';
import type { ModelLocation } from '../../../encoder/manifest.ts';
import { OrtEncoder } from '../../../encoder/ort-encoder.ts';
import { WebGpuVitEncoder } from '../../../encoder/webgpu-vit-encoder.ts';
import { GpuContext } from '../../../../kernels/gpu/gpu-context.ts';
import { checkMatmul } from '../../../../kernels/matmul/matmul-check.ts';
import { randomUniform } from '../../../../kernels/dispatch/check.ts';
import { KnnSearch } from '../../../../kernels/knn/knn.ts';
import { knnScores } from '../../../scoring/knn.ts';
import { worstRowCosine } from '../../../util/row-cosine.ts';

const usage = 'lamina bench encoder [--engine webgpu|ort] [--ep cpu|webgpu] [--model untrained-vit-b16] [--batch 64] [--size N] [--reps 10] [--stream 20] [--regions 1024,2048] [--knn BANK [--knn-queries 10000] [--knn-dim 384]] [--precision f16|f32] [--path auto|portable] [--attention auto|flash|gemm[,…]] [--gemm BMxBNxBK-sgMxN-sS[-wd]] [--check] [--gpu N] [--json FILE]';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeIt(reps: number, fn: () => Promise<unknown>): Promise<number[]> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times;
}

/**
 * `count` calls of `fn`, each started before the previous one is awaited (two in flight): ms per
 * call over the whole stream, ramp-up and drain included.
 */
async function streamed(count: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const t0 = performance.now();
  let prev: Promise<unknown> | undefined;
  try {
    for (let i = 0; i < count; i++) {
      const next = fn();
      next.catch(() => {}); // awaited on the next turn, or below
      const p = prev;
      prev = next;
      await p;
    }
    await prev;
  } finally {
    await prev?.catch(() => {});
  }
  return (performance.now() - t0) / count;
}

interface EngineRun {
  batch: number; reps: number; stream: number; size: number; regions: number[]; precision?: 'f16' | 'f32'; path: 'auto' | 'portable';
  mode: 'auto' | 'flash' | 'gemm'; gemm?: string; attentionPath: 'auto' | 'portable'; check: boolean;
  /** The kNN flags, on the first run only. */
  knn?: Record<string, string | boolean | undefined>;
  pixels: Float32Array;
}

/** One engine configuration: checks (with `check`), tiles/s end to end and resident, regions, kNN. */
async function benchEngine(ctx: GpuContext, location: ModelLocation, o: EngineRun, results: Record<string, unknown>): Promise<void> {
  const m = location.manifest;
  const { batch, reps, size, pixels } = o;
  const enc = await WebGpuVitEncoder.create(location, { context: ctx, maxBatch: batch, path: o.path, attentionPath: o.attentionPath, attention: o.mode, ...(o.gemm ? { gemm: o.gemm } : {}), ...(o.precision ? { precision: o.precision } : {}) });
  try {
    console.log(`WebGPU ViT engine (--attention ${o.mode}) on ${enc.describe()}`);
    const tileAttention = enc.model.attentionFor(batch, size);
    console.log(`attention at ${size} px (${(size / m.patchSize) ** 2} patches): ${tileAttention}`);
    results.tileAttention = tileAttention;
    if (o.check) {
      const prec = enc.model.precision;
      const checks: Record<string, number> = {};
      if (o.knn) {
        for (const [i, c] of [{ M: 394, N: 768, K: 768 }, { M: 130, N: 72, K: 24, gelu: true }, { M: 1, N: 8, K: 8, residual: true, layerScale: true }, { M: 1000, N: 3072, K: 768, gelu: true }, { M: 777, N: 768, K: 3072, residual: true, layerScale: true }, { M: 197, N: 197, K: 64, transposeW: true, outF32: true }].entries()) {
          const r = await checkMatmul(ctx, { ...c, precision: prec, path: o.path, seed: 100 + i, spec: o.gemm });
          checks[`${r.kernel} M=${c.M} N=${c.N} K=${c.K}`] = r.error;
          console.log(`check ${r.kernel} M=${c.M} N=${c.N} K=${c.K}: relative error ${r.error.toExponential(2)} (bound ${prec === 'f16' ? '2e-3' : '1e-5'})`);
        }
      }
      const ort = await OrtEncoder.create(location, { device: 'cpu' });
      const two = randomUniform(2 * 3 * m.inputSize * m.inputSize, 12);
      const want = await ort.embed(two, 2, { tokens: true });
      await ort.close();
      const got = await enc.embed(two, 2, { tokens: true });
      const ce = worstRowCosine(got.embeddings, want.embeddings, m.embeddingDim), ct = worstRowCosine(got.tokens!, want.tokens!, m.embeddingDim);
      console.log(`check engine vs ONNX Runtime CPU EP, 2 tiles: min cosine ${ce.toFixed(6)} (embeddings), ${ct.toFixed(6)} (patch tokens); floor 0.999`);
      Object.assign(results, { checks, cosineEmbeddings: ce, cosineTokens: ct });
    }
    // ms per forward replayed back to back, after one untimed replay (which records the plan)
    const residentMs = async (images: number, px: number, n: number, attentionOnly = false) => {
      await enc.model.replay(images, px, 1, attentionOnly);
      const t0 = performance.now();
      await enc.model.replay(images, px, n, attentionOnly);
      return (performance.now() - t0) / n;
    };
    const e2e = median(await timeIt(reps, () => enc.embed(pixels, batch, { tokens: false })));
    const resident = await residentMs(batch, size, reps);
    console.log(`${m.name}, ${size} px, batch ${batch}: ${(batch / (e2e / 1000)).toFixed(1)} tiles/s end to end (median ${e2e.toFixed(1)} ms per batch), ${(batch / (resident / 1000)).toFixed(1)} tiles/s GPU-resident (${resident.toFixed(1)} ms per forward, ${reps} back to back)`);
    Object.assign(results, { kernels: enc.describe(), msPerBatch: e2e, tilesPerSecond: batch / (e2e / 1000), residentMsPerForward: resident, residentTilesPerSecond: batch / (resident / 1000) });
    // the attention steps alone, replayed the same way: their share of the forward
    const attentionMs = await residentMs(batch, size, reps, true);
    console.log(`${m.name}, ${size} px, batch ${batch}: attention steps alone ${attentionMs.toFixed(1)} ms per forward (${(100 * attentionMs / resident).toFixed(0)}% of ${resident.toFixed(1)} ms; ${enc.model.attentionFor(batch, size)})`);
    results.residentAttentionMs = attentionMs;
    if (size === m.inputSize) {
      // The analysis hands the engine RGB bytes (normalised on the GPU): a quarter of the f32 upload.
      const rgb = new Uint8Array(batch * size * size * 3);
      for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 2654435761) >>> 24;
      const e2eRgb = median(await timeIt(reps, () => enc.embedRgb(rgb, batch, { tokens: false })));
      console.log(`${m.name}, ${size} px, batch ${batch}: ${(batch / (e2eRgb / 1000)).toFixed(1)} tiles/s end to end from RGB bytes (embedRgb, the analysis path; median ${e2eRgb.toFixed(1)} ms per batch)`);
      Object.assign(results, { msPerBatchRgb: e2eRgb, tilesPerSecondRgb: batch / (e2eRgb / 1000) });
      if (o.stream) {
        const sRgb = await streamed(o.stream, () => enc.embedRgb(rgb, batch, { tokens: false }));
        const sF32 = await streamed(o.stream, () => enc.embed(pixels, batch, { tokens: false }));
        const pct = (ms: number) => `${((100 * resident) / ms).toFixed(0)}% of resident`;
        console.log(`${m.name}, ${size} px, batch ${batch}: sustained end to end, ${o.stream} batches streamed with 2 in flight: ${(batch / (sRgb / 1000)).toFixed(1)} tiles/s from RGB bytes (${sRgb.toFixed(1)} ms per batch, ${pct(sRgb)}), ${(batch / (sF32 / 1000)).toFixed(1)} tiles/s from f32 (${sF32.toFixed(1)} ms per batch, ${pct(sF32)})`);
        Object.assign(results, {
          streamBatches: o.stream, streamMsPerBatchRgb: sRgb, streamTilesPerSecondRgb: batch / (sRgb / 1000),
          streamMsPerBatch: sF32, streamTilesPerSecond: batch / (sF32 / 1000),
        });
      }
    }
    const regionResults: Record<string, unknown>[] = [];
    for (const r of o.regions) {
      const px = randomUniform(3 * r * r, r);
      const n = (r / m.patchSize) ** 2;
      const times = await timeIt(Math.min(reps, 5), () => enc.embedRegion(px, 1, r, { tokens: true }));
      const t = median(times);
      const res = await residentMs(1, r, Math.min(reps, 5));
      console.log(`region ${r}² (${n} tokens, ${enc.model.attentionFor(1, r)}): ${(1000 / t).toFixed(2)} regions/s end to end with patch tokens (median ${t.toFixed(1)} ms), ${(1000 / res).toFixed(2)} regions/s GPU-resident (${res.toFixed(1)} ms)`);
      regionResults.push({ size: r, tokens: n, msPerRegion: t, regionsPerSecond: 1000 / t, residentMs: res });
    }
    if (regionResults.length) results.regions = regionResults;
    const values = o.knn;
    if (values?.knn) {
      const m2 = numberFlag('knn', values.knn as string, undefined, 1, 4_000_000);
      const nq = numberFlag('knn-queries', values['knn-queries'] as string | undefined, 10000, 1, 1_000_000);
      const dim = numberFlag('knn-dim', values['knn-dim'] as string | undefined, 384, 1, 4096);
      const bank = { dim, count: m2, data: randomUniform(m2 * dim, 21) };
      const queries = randomUniform(nq * dim, 22);
      const knn = await KnnSearch.create(ctx, bank).catch((err: Error) => { console.log(`kNN: ${err.message}`); return undefined; });
      if (knn) try {
        const times = await timeIt(3, () => knn.search(queries, nq, 1));
        const t = median(times);
        const got = await knn.search(queries, nq, 1);
        const want = knnScores(bank, queries.subarray(0, 4 * dim), 4, 1);
        const worst = Math.max(...[0, 1, 2, 3].map((i) => Math.abs(got.scores[i]! - want[i]!) / want[i]!));
        console.log(`kNN on GPU: ${nq} queries × bank ${m2} × dim ${dim}, k=1: ${t.toFixed(1)} ms (${(2 * nq * m2 * dim / (t * 1e-3) / 1e12).toFixed(2)} TFLOP/s of distance work); 4 queries vs CPU scorer: max relative score difference ${worst.toExponential(2)}`);
        results.knn = { queries: nq, bank: m2, dim, ms: t, maxRelDiff: worst };
      } finally {
        knn.destroy();
      }
    }
  } finally {
    await enc.close();
  }
}

export const command: Command = {
  summary: 'ViT encoder throughput (tiles/s, regions/s): our WebGPU engine or ONNX Runtime',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      engine: { type: 'string' }, ep: { type: 'string' }, model: { type: 'string' }, batch: { type: 'string' }, size: { type: 'string' },
      reps: { type: 'string' }, stream: { type: 'string' }, regions: { type: 'string' }, precision: { type: 'string' }, path: { type: 'string' },
      check: { type: 'boolean' }, gpu: { type: 'string' }, json: { type: 'string' }, knn: { type: 'string' }, 'knn-queries': { type: 'string' }, 'knn-dim': { type: 'string' }, 'attention-path': { type: 'string' },
      attention: { type: 'string' }, gemm: { type: 'string' },
    }, usage);
    const engine = values.engine ?? 'webgpu';
    if (engine !== 'webgpu' && engine !== 'ort') throw invalidParameter('--engine', "'webgpu' or 'ort'", engine);
    const batch = numberFlag('batch', values.batch, 64, 1, 4096);
    const reps = numberFlag('reps', values.reps, 10, 1, 1000);
    const stream = numberFlag('stream', values.stream, 20, 0, 10000);
    const location = await resolveModel(values.model ?? 'untrained-vit-b16');
    const m = location.manifest;
    const size = numberFlag('size', values.size, m.inputSize, m.patchSize, 8192);
    const regions = values.regions ? values.regions.split(',').map((x) => numberFlag('regions', x, undefined, m.patchSize, 8192)) : [];
    const results: Record<string, unknown> = { model: m.name, engine, batch, size, date: new Date().toISOString() };
    const pixels = randomUniform(batch * 3 * size * size, 11);

    if (engine === 'ort') {
      const ep = (values.ep ?? 'cpu') as 'cpu' | 'webgpu';
      if (ep !== 'cpu' && ep !== 'webgpu') throw invalidParameter('--ep', "'cpu' or 'webgpu'", ep);
      if (size !== m.inputSize) throw invalidParameter('--size', `${m.inputSize} (the ONNX model's input size) for --engine ort`, size);
      const enc = await OrtEncoder.create(location, { device: ep, maxBatch: batch });
      try {
        const t = median(await timeIt(reps, () => enc.embed(pixels, batch)));
        console.log(`ONNX Runtime ${ep} EP, ${m.name}, ${size} px, batch ${batch}: ${(batch / (t / 1000)).toFixed(1)} tiles/s (median ${t.toFixed(1)} ms per batch, ${reps} reps)`);
        Object.assign(results, { ep, msPerBatch: t, tilesPerSecond: batch / (t / 1000) });
      } finally {
        await enc.close();
      }
    } else {
      const precision = values.precision as 'f16' | 'f32' | undefined;
      if (precision && precision !== 'f16' && precision !== 'f32') throw invalidParameter('--precision', "'f16' or 'f32'", precision);
      const path = (values.path ?? 'auto') as 'auto' | 'portable';
      if (path !== 'auto' && path !== 'portable') throw invalidParameter('--path', "'auto' or 'portable'", path);
      const modes = (values.attention ?? 'auto').split(',') as ('auto' | 'flash' | 'gemm')[];
      for (const mode of modes) if (mode !== 'auto' && mode !== 'flash' && mode !== 'gemm') throw invalidParameter('--attention', "'auto', 'flash' or 'gemm' (comma-separated)", mode);
      const ctx = await GpuContext.create(values.gpu ? { adapterIndex: numberFlag('gpu', values.gpu, 0, 0, 64) } : {});
      const runs: Record<string, unknown>[] = [];
      try {
        for (const [mi, mode] of modes.entries()) {
          const r: Record<string, unknown> = { attention: mode };
          await benchEngine(ctx, location, { batch, reps, stream, size, regions, precision, path, mode, gemm: values.gemm, attentionPath: (values['attention-path'] ?? path) as 'auto' | 'portable', check: !!values.check, knn: mi === 0 ? values : undefined, pixels }, r);
          runs.push(r);
        }
      } finally {
        await ctx.destroy();
      }
      Object.assign(results, runs.length === 1 ? runs[0] : { runs });
    }
    if (values.json) writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
    return 0;
  },
};
