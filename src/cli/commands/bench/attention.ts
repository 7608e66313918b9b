/**
 * `lamina bench attention`: GPU time (timestamp queries) and TFLOP/s of our flash attention, one
 * sequence per batch entry, self-attention (Sq = Sk = S); FLOPs counted as 4·B·S²·H·D. With
 * --check, every kernel variant first runs against the CPU reference on fresh random inputs of
 * awkward shapes (and a sample of rows at each benchmarked S). --engine ort times ONNX Runtime's
 * WebGPU EP instead (run it as a separate process: it links its own Dawn).
 */
import { writeFileSync } from 'node:fs';
import { parseFlags, numberFlag } from '../../args.ts';
import { invalidParameter } from '../../../errors.ts';
import type { Command } from '../../main.ts';
import { GpuContext } from '../../../../kernels/gpu/gpu-context.ts';
import { FlashAttention, chooseVariant, type AttentionVariant, type SubgroupMatrixVariant } from '../../../../kernels/flash-attention/flash-attention.ts';
import { checkAttention } from '../../../../kernels/flash-attention/attention-check.ts';
import { mulberry32 } from '../../../util/prng.ts';
import { variantKey, workgroupBytes } from '../../../../kernels/flash-attention/flash-attention-wgsl.ts';
import { benchOrtAttention } from './attention-ort.ts';
import { PROBE_MODES, runMmaProbe } from '../../../../kernels/flash-attention/mma-probe.ts';

const usage = 'lamina bench attention [--seq 1024,4096,16384] [--heads 12] [--dim 64] [--batch 1] [--precision f16|f32] [--path auto|portable|subgroup-matrix] [--sweep] [--only sgmat2,mt1-bc64] [--check] [--probe] [--reps 10] [--gpu N] [--engine lamina|ort] [--json FILE]';

function list(name: string, raw: string | undefined, fallback: number[]): number[] {
  if (!raw) return fallback;
  return raw.split(',').map((x) => numberFlag(name, x, undefined, 1, 1 << 22));
}

/**
 * Shapes tried by --sweep: design 3 in both accumulator modes and several tilings, then design 2
 * (its flag padded to 16 bytes, the form that is correct on the H200): staging at the top of each
 * tile or register-prefetched (split, 4-byte loads), 8 to 2 subgroups, 1 or 2 query tiles per
 * subgroup, 32- or 64-key tiles. Shapes over the adapter's workgroup memory are left out.
 */
export function sweepVariants(base: AttentionVariant, limit: number): AttentionVariant[] {
  if (base.path === 'portable') return [base];
  const d = base.headDim;
  const shapes: Partial<SubgroupMatrixVariant>[] = d <= 64
    ? [
      { accumulator: 'matrix', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 1, keysPerTile: 64 },
      { accumulator: 'matrix', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 2, keysPerTile: 64 },
      { accumulator: 'matrix', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 2, keysPerTile: 32 },
      { accumulator: 'matrix', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 4, keysPerTile: 32 },
      { accumulator: 'matrix', subgroupsPerWorkgroup: 2, mTilesPerSubgroup: 1, keysPerTile: 64 },
      { accumulator: 'matrix', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 1, keysPerTile: 64, reloadQ: true },
      { accumulator: 'private', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 1, keysPerTile: 64 },
      { accumulator: 'private', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 2, keysPerTile: 32 },
    ]
    : [
      { accumulator: 'matrix', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 1, keysPerTile: 64 },
      { accumulator: 'matrix', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 1, keysPerTile: 32 },
      { accumulator: 'matrix', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 2, keysPerTile: 32 },
      { accumulator: 'private', subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 1, keysPerTile: 32 },
    ];
  const out: AttentionVariant[] = [];
  for (const shape of shapes) {
    const v = { path: 'subgroup-matrix', headDim: d, tile: 16, subgroupSize: base.subgroupSize, reloadQ: false, ...shape } as SubgroupMatrixVariant;
    if (workgroupBytes(v) <= limit && !out.some((o) => variantKey(o) === variantKey(v))) out.push(v);
  }
  // design 2: [subgroups, query tiles per subgroup, keys per tile, staging: '' (at the top of each
  // tile), pf (register prefetch), split (K and V staged in two places), u32 (4-byte staging loads),
  // rs (scores read twice from workgroup memory instead of held in registers), cp (P's scratch only
  // BC + 8 wide, Q staged through it in chunks), db (K/V staging double-buffered: two barriers fewer
  // a tile), nu (the rescale flag read plainly after a barrier, uniformity analysis off: one fewer),
  // ff (a mask-free softmax for full tiles), sq (Q pre-scaled by scale·log2 e)]
  const staged: [number, number, number, string][] = d <= 64
    ? [[8, 1, 32, ''], [8, 1, 32, 'pf'], [8, 1, 32, 'pf-u32'], [8, 1, 32, 'pf-split'], [8, 1, 32, 'pf-split-u32'], [8, 1, 32, 'pf-rs'],
      [8, 1, 32, 'pf-split-u32-rs'], [8, 1, 32, 'pf-cp'], [8, 1, 32, 'pf-split-u32-cp'], [8, 1, 32, 'pf-split-u32-rs-cp'],
      [4, 2, 32, 'pf-split-u32'], [4, 2, 32, 'pf-split-u32-rs'], [4, 2, 32, 'pf-split-u32-rs-cp'], [4, 1, 64, 'pf-split-u32'],
      [8, 1, 32, 'pf-nu'], [8, 1, 32, 'pf-cp-db'], [8, 1, 32, 'pf-cp-db-nu'], [4, 2, 32, 'pf-cp-db-nu'], [8, 1, 16, 'pf-cp-db-nu'], [8, 1, 16, 'pf-db-nu'],
      [8, 1, 32, 'pf-cp-db-nu-ff'], [8, 1, 32, 'pf-cp-db-nu-ff-sq'], [16, 1, 16, 'pf-cp-db-nu-ff-sq'], [8, 2, 16, 'pf-cp-db-nu-ff-sq'],
      [4, 2, 16, 'pf-cp-db-nu-ff-sq'], [4, 4, 16, 'pf-cp-db-nu-ff-sq'], [8, 2, 16, 'pf-db-nu-ff-sq'],
      [4, 1, 32, 'pf-cp-db-nu-ff-sq'], [4, 1, 16, 'pf-cp-db-nu-ff-sq'], [8, 1, 16, 'pf-cp-db-nu-ff-sq']]
    : [[4, 1, 32, ''], [4, 1, 32, 'pf'], [4, 1, 32, 'pf-split-u32'], [4, 1, 32, 'pf-split-u32-rs'], [8, 1, 32, 'pf-split-u32-cp'],
      [4, 1, 32, 'pf-split-u32-cp'], [2, 2, 32, 'pf-split-u32'], [4, 1, 16, 'pf-split-u32'],
      [4, 1, 32, 'pf-nu'], [4, 1, 16, 'pf-cp-db-nu'], [8, 1, 16, 'pf-cp-db-nu'], [2, 2, 32, 'pf-cp-db-nu'], [8, 1, 16, 'pf-cp-db-nu-ff'], [8, 1, 16, 'pf-cp-db-nu-ff-sq'], [4, 2, 16, 'pf-cp-db-nu-ff-sq']];
  for (const [subgroupsPerWorkgroup, mTilesPerSubgroup, keysPerTile, mode] of staged) {
    const v: AttentionVariant = {
      path: 'subgroup-matrix-v2', headDim: d, tile: 16, subgroupSize: base.subgroupSize, subgroupsPerWorkgroup, mTilesPerSubgroup, keysPerTile,
      emulate: false, alignedFlag: true, prefetch: mode.includes('pf'), splitStage: mode.includes('split'), narrowStage: mode.includes('u32'), rereadS: mode.includes('rs'), compactP: mode.includes('cp'),
      doubleBuffer: mode.includes('db'), plainFlagRead: mode.includes('nu'),
      fullTileFast: mode.includes('ff'), prescaleQ: mode.includes('sq'),
    };
    if (workgroupBytes(v) <= limit) out.push(v);
  }
  return out;
}

export const command: Command = {
  summary: 'Flash attention on WebGPU: TFLOP/s and GPU time, with --check against the CPU reference',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      seq: { type: 'string' }, heads: { type: 'string' }, dim: { type: 'string' }, batch: { type: 'string' },
      precision: { type: 'string' }, path: { type: 'string' }, sweep: { type: 'boolean' }, only: { type: 'string' }, check: { type: 'boolean' }, probe: { type: 'boolean' },
      reps: { type: 'string' }, gpu: { type: 'string' }, engine: { type: 'string' }, json: { type: 'string' },
    }, usage);
    const seqs = list('seq', values.seq, [1024, 4096, 16384]);
    const heads = numberFlag('heads', values.heads, 12, 1, 1024);
    const dim = numberFlag('dim', values.dim, 64, 8, 256);
    const batch = numberFlag('batch', values.batch, 1, 1, 65535);
    const reps = numberFlag('reps', values.reps, 10, 1, 1000);
    const precision = (values.precision ?? 'f16') as 'f16' | 'f32';
    if (precision !== 'f16' && precision !== 'f32') throw invalidParameter('--precision', "'f16' or 'f32'", values.precision);
    const path = (values.path ?? 'auto') as 'auto' | 'portable' | 'subgroup-matrix';
    if (!['auto', 'portable', 'subgroup-matrix'].includes(path)) throw invalidParameter('--path', "'auto', 'portable' or 'subgroup-matrix'", values.path);
    const results: Record<string, unknown>[] = [];
    const flops = (s: number) => 4 * batch * s * s * heads * dim;

    if ((values.engine ?? 'lamina') === 'ort') {
      console.log(`ONNX Runtime WebGPU EP, MultiHeadAttention f16, B=1 H=${heads} D=${dim}; wall time per run`);
      for (const t of await benchOrtAttention(seqs, heads, dim, Math.min(reps, 5))) {
        const tflops = (4 * t.seq * t.seq * heads * dim) / (t.medianMs * 1e-3) / 1e12;
        console.log(`ort-webgpu  S=${String(t.seq).padStart(6)}  ${t.medianMs.toFixed(2).padStart(9)} ms  ${tflops.toFixed(2).padStart(7)} TFLOP/s`);
        results.push({ engine: 'ort-webgpu', seq: t.seq, ms: t.medianMs, tflops });
      }
      if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 1));
      return 0;
    }

    const ctx = await GpuContext.create(values.gpu !== undefined ? { adapterIndex: numberFlag('gpu', values.gpu, 0, 0, 64) } : {});
    let failed = false;
    try {
      console.log(`adapter: ${ctx.describe()}`);
      const base = chooseVariant(ctx.capabilities, ctx.device.limits, dim, precision, path);
      if (values.probe && ctx.capabilities.subgroupMatrix && ctx.capabilities.timestampQuery) {
        // the ceiling of the matrix stack itself (mma-probe.ts), before any kernel
        for (const mode of PROBE_MODES) {
          try {
            const r = await runMmaProbe(ctx, mode);
            console.log(`mma-probe ${mode.padEnd(7)} ${r.ms.toFixed(3).padStart(8)} ms  ${r.tflops.toFixed(1).padStart(7)} TFLOP/s`);
            results.push({ probe: mode, ms: r.ms, tflops: r.tflops });
          } catch (err) {
            console.log(`mma-probe ${mode}: failed: ${(err as Error).message.slice(0, 300)}`);
          }
        }
      }
      const only = values.only?.split(',').filter(Boolean);
      const variants = (values.sweep ? sweepVariants(base, ctx.device.limits.maxComputeWorkgroupStorageSize) : [base])
        .filter((v) => !only || only.some((o) => variantKey(v).includes(o)));
      const built: FlashAttention[] = [];
      for (const variant of variants) {
        try {
          // plain runs take what a caller gets ('auto': the fast path only if it passes its self-check)
          const plain = !values.sweep && path === 'auto';
          built.push(await FlashAttention.create(ctx, plain ? { headDim: dim, precision } : { headDim: dim, precision, variant }));
        } catch (err) {
          console.log(`${variantKey(variant)}: does not build: ${(err as Error).message.slice(0, 600)}`);
        }
      }
      if (values.check) {
        const tol = precision === 'f16' ? 1e-2 : 2e-3;
        const cases = [
          { batch: 1, heads: 2, seqQ: 1, seqK: 1, mask: 'none' as const, spread: 1 },
          { batch: 2, heads: 3, seqQ: 7, seqK: 300, mask: 'random' as const, spread: 1 },
          { batch: 2, heads: 2, seqQ: 255, seqK: 255, mask: 'last-batch-empty' as const, spread: 1 },
          { batch: 1, heads: 2, seqQ: 1000, seqK: 1000, mask: 'none' as const, spread: 3 },
          { batch: 1, heads, seqQ: 513, seqK: 513, mask: 'none' as const, spread: 1 },
          { batch: 2, heads, seqQ: 197, seqK: 197, mask: 'none' as const, spread: 2, packed: true },
          { batch: 3, heads: 1, seqQ: 40, seqK: 1000, mask: 'random' as const, spread: 2 },
          // long sequences: a sample of rows, two heads (the CPU reference is f64 JavaScript)
          ...seqs.filter((s) => s <= 16384).map((s) => ({ batch: 1, heads: Math.min(heads, 2), seqQ: s, seqK: s, mask: 'none' as const, spread: 1, sampleRows: 8 })),
        ];
        for (const fa of [...built]) {
          for (const [i, c] of cases.entries()) {
            const r = await checkAttention(ctx, fa, { ...c, headDim: dim }, { seed: 1000 + i, mask: c.mask, spread: c.spread, ...('sampleRows' in c ? { sampleRows: c.sampleRows } : {}), ...('packed' in c ? { packed: c.packed } : {}) });
            const ok = r.relError <= tol && r.unwritten === 0 && r.guardClobbered === 0 && r.nonFinite === 0 && !(r.maskedBatchMaxAbs > 0);
            failed ||= !ok;
            if (!ok && built.includes(fa)) built.splice(built.indexOf(fa), 1); // never time a wrong kernel
            console.log(`check ${variantKey(fa.variantFor(c.seqQ))} B=${c.batch} H=${c.heads} Sq=${c.seqQ} Sk=${c.seqK} mask=${c.mask}${'packed' in c ? ' packed' : ''}: rel.err ${r.relError.toExponential(2)} unwritten ${r.unwritten} guard ${r.guardClobbered} ${ok ? 'ok' : 'FAIL'}`);
            results.push({ check: variantKey(fa.variantFor(c.seqQ)), ...c, ...r, ok });
          }
        }
      }
      if (built.length) {
        // the checks leave the GPU idle and its clocks low: in call 2 the first two kernels timed at
        // S = 4096 ran 5× slower than the third; ~0.5 s of work at the largest S first
        const s = Math.max(...seqs);
        const shape = { batch, heads, seqQ: s, seqK: s, headDim: dim };
        const buffers = makeInputs(ctx, shape, precision);
        const t0 = performance.now();
        while (performance.now() - t0 < 500) {
          built[0]!.run(shape, buffers);
          await ctx.sync();
        }
        for (const b of Object.values(buffers)) b.buffer.destroy();
      }
      for (const s of seqs) {
        const shape = { batch, heads, seqQ: s, seqK: s, headDim: dim };
        const buffers = makeInputs(ctx, shape, precision);
        try {
          for (const fa of built) {
            const t = await timeAttention(ctx, fa, shape, buffers, reps);
            const tflops = flops(s) / (t.medianNs * 1e-9) / 1e12;
            const name = variantKey(fa.variantFor(s));
            console.log(`${name.padEnd(44)} S=${String(s).padStart(6)}  ${(t.medianNs / 1e6).toFixed(3).padStart(9)} ms  ${tflops.toFixed(1).padStart(7)} TFLOP/s  (min ${(t.minNs / 1e6).toFixed(3)} ms, ${t.reps} runs)`);
            results.push({ engine: 'lamina', variant: name, batch, heads, dim, seq: s, ms: t.medianNs / 1e6, minMs: t.minNs / 1e6, tflops });
          }
        } finally {
          for (const b of Object.values(buffers)) b.buffer.destroy();
        }
      }
      printTable(results.filter((r) => r.engine === 'lamina') as { variant: string; seq: number; tflops: number; ms: number }[], seqs);
      for (const fa of built) fa.destroy();
    } finally {
      await ctx.destroy();
    }
    if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 1));
    return failed ? 1 : 0;
  },
};

/** Variant × sequence length, TFLOP/s (ms), last so that it ends the output. */
function printTable(rows: { variant: string; seq: number; tflops: number; ms: number }[], seqs: number[]): void {
  if (!rows.length) return;
  const names = [...new Set(rows.map((r) => r.variant))];
  console.log(`\n| variant | ${seqs.map((s) => `S=${s}`).join(' | ')} |\n|---|${seqs.map(() => '---').join('|')}|`);
  for (const name of names) {
    const cells = seqs.map((s) => {
      const r = rows.find((x) => x.variant === name && x.seq === s);
      return r ? `${r.tflops.toFixed(1)} (${r.ms.toFixed(2)} ms)` : '—';
    });
    console.log(`| ${name} | ${cells.join(' | ')} |`);
  }
}

type Inputs = { q: { buffer: GPUBuffer }; k: { buffer: GPUBuffer }; v: { buffer: GPUBuffer }; out: { buffer: GPUBuffer } };

/** Random inputs (never zeros: f16 in [-1, 1), or f32) and an output buffer for one shape. */
function makeInputs(ctx: GpuContext, shape: { batch: number; heads: number; seqQ: number; headDim: number }, precision: 'f16' | 'f32'): Inputs {
  const elems = shape.batch * shape.seqQ * shape.heads * shape.headDim;
  const rand = mulberry32(shape.seqQ);
  const fill = () => {
    const data = precision === 'f16'
      ? Uint16Array.from({ length: elems }, () => ((rand() < 0.5 ? 0x8000 : 0) | ((11 + Math.floor(rand() * 4)) << 10) | Math.floor(rand() * 1024)))
      : Float32Array.from({ length: elems }, () => rand() * 2 - 1);
    return { buffer: ctx.upload(data, GPUBufferUsage.STORAGE) };
  };
  const bytes = elems * (precision === 'f16' ? 2 : 4);
  return { q: fill(), k: fill(), v: fill(), out: { buffer: ctx.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC }) } };
}

/** Wall-clock milliseconds the timed runs of one kernel at one size should take at most. */
const BUDGET_MS = 1500;

/** Median and minimum GPU nanoseconds of `reps` calls, each its own command encoder, after 2 warm-ups. */
async function timeAttention(ctx: GpuContext, fa: FlashAttention, shape: { batch: number; heads: number; seqQ: number; seqK: number; headDim: number }, buffers: Inputs, wantReps: number) {
  const t0 = performance.now();
  fa.run(shape, buffers);
  await ctx.sync();
  fa.run(shape, buffers);
  await ctx.sync();
  // slow kernels at long sequences get fewer runs (at least 3), so one sweep stays within minutes
  const reps = Math.max(3, Math.min(wantReps, Math.floor(BUDGET_MS / Math.max(1e-3, (performance.now() - t0) / 2))));
  const timer = ctx.timer;
  const times: number[] = [];
  for (let done = 0; done < reps;) {
    const n = Math.min(reps - done, timer.capacity);
    for (let i = 0; i < n; i++) fa.run(shape, buffers, { timestampWrites: timer.passTimestamps() });
    times.push(...(await timer.read()));
    done += n;
  }
  times.sort((a, b) => a - b);
  return { medianNs: times[Math.floor(times.length / 2)]!, minNs: times[0]!, reps };
}
