/**
 * Flash attention against the CPU reference on the adapter at hand (lavapipe in CI): awkward
 * sizes (S = 1, 7, 255, 1000), cross-attention (Sq ≠ Sk), key padding masks including a batch
 * whose keys are all masked (defined as zeros), head sizes 64 and 128, f16 and f32 tensors.
 * Tolerances: ‖gpu − ref‖/‖ref‖ ≤ 1e-2 for f16 tensors (inputs, P and output rounded to f16,
 * f32 accumulation) and ≤ 2e-3 for f32. The output is poisoned with NaN and followed by a guard
 * region; every element must be written, the guard untouched, and NaN never passes.
 * The subgroup-matrix path runs only where the adapter has the feature (not lavapipe); its WGSL is
 * compiled here on Dawn's null backend, which exposes the feature, so it is at least valid WGSL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GpuContext } from '../gpu/gpu-context.ts';
import { InvalidParameterError } from '../../src/errors.ts';
import { FlashAttention, attentionOnHost, chooseVariant, fastPathCandidates, longSequenceCandidate, type AttentionShape, type AttentionVariant } from './flash-attention.ts';
import { attentionWgsl, variantKey, workgroupBytes } from './flash-attention-wgsl.ts';
import { mmaProbeWgsl, PROBE_MODES } from './mma-probe.ts';
import { checkAttention, type CheckOptions } from './attention-check.ts';
import { attentionCpu } from './flash-attention.cpu.ts';
import { toF16Array, fromF16Array } from '../gpu/f16.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

let ctx: GpuContext;
before(async () => { ctx = await GpuContext.create(); });
after(async () => { await ctx?.destroy(); });

const TOL = { f16: 1e-2, f32: 2e-3 };

async function expectClose(precision: 'f16' | 'f32', shape: AttentionShape, options: CheckOptions, path: 'auto' | 'portable' = 'auto') {
  const fa = await FlashAttention.create(ctx, { headDim: shape.headDim, precision, path });
  const r = await checkAttention(ctx, fa, shape, options);
  const where = `${fa.name} ${JSON.stringify(shape)} seed ${options.seed}`;
  assert.equal(r.unwritten, 0, `unwritten outputs: ${where}`);
  assert.equal(r.guardClobbered, 0, `guard region written: ${where}`);
  assert.equal(r.nonFinite, 0, `non-finite outputs: ${where}`);
  assert.ok(r.relError <= TOL[precision], `relative error ${r.relError} > ${TOL[precision]}: ${where}`);
  if (options.mask === 'last-batch-empty') assert.equal(r.maskedBatchMaxAbs, 0, `fully masked batch not zeros: ${where}`);
  fa.destroy();
}

describe('flash attention on this adapter', () => {
  for (const precision of ['f16', 'f32'] as const) {
    for (const headDim of [64, 128]) {
      test(`${precision} D=${headDim}: S = 1, 7, 255 with batch and heads`, async () => {
        await expectClose(precision, { batch: 1, heads: 2, seqQ: 1, seqK: 1, headDim }, { seed: 1 });
        await expectClose(precision, { batch: 2, heads: 3, seqQ: 7, seqK: 7, headDim }, { seed: 2 });
        await expectClose(precision, { batch: 1, heads: 2, seqQ: 255, seqK: 255, headDim }, { seed: 3, spread: 3 });
      });
      test(`${precision} D=${headDim}: cross-attention and masks`, async () => {
        await expectClose(precision, { batch: 2, heads: 2, seqQ: 33, seqK: 130, headDim }, { seed: 4, mask: 'random' });
        await expectClose(precision, { batch: 3, heads: 1, seqQ: 70, seqK: 9, headDim }, { seed: 5, mask: 'last-batch-empty' });
      });
    }
    test(`${precision}: packed QKV views (one buffer, row stride 3·H·D), S = 50`, async () => {
      await expectClose(precision, { batch: 2, heads: 3, seqQ: 50, seqK: 50, headDim: 64 }, { seed: 7, spread: 2, packed: true });
    });
    test(`${precision}: S = 1000 (one head, D=${precision === 'f16' ? 128 : 64})`, async () => {
      await expectClose(precision, { batch: 1, heads: 1, seqQ: 1000, seqK: 1000, headDim: precision === 'f16' ? 128 : 64 }, { seed: 6, spread: 2 });
    });
  }

  test('the path follows the adapter: subgroup-matrix only with the feature', () => {
    const v = chooseVariant(ctx.capabilities, ctx.device.limits, 64, 'f16');
    assert.equal(v.path !== 'portable', Boolean(ctx.capabilities.subgroupMatrix && ctx.capabilities.subgroupMatrixConfigs.length));
    assert.equal(chooseVariant(ctx.capabilities, ctx.device.limits, 64, 'f32').path, 'portable');
  });

  test('host-array API matches the CPU reference', async () => {
    const shape = { batch: 1, heads: 1, seqQ: 3, seqK: 5, headDim: 64 };
    const q = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i));
    const k = Float32Array.from({ length: 5 * 64 }, (_, i) => Math.cos(i * 0.7));
    const v = Float32Array.from({ length: 5 * 64 }, (_, i) => (i % 13) - 6);
    const got = await attentionOnHost(ctx, shape, { q: toF16Array(q), k: toF16Array(k), v: toF16Array(v) }, { scale: 0.5 });
    const ref = attentionCpu(shape, { q: fromF16Array(toF16Array(q)), k: fromF16Array(toF16Array(k)), v: fromF16Array(toF16Array(v)) }, { scale: 0.5 });
    const out = fromF16Array(got as Uint16Array);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(out[i]! - ref[i]!) <= 1e-2 * (1 + Math.abs(ref[i]!)), `element ${i}: ${out[i]} vs ${ref[i]}`);
  });

  test('bad views are refused with a clear error', async () => {
    const fa = await FlashAttention.create(ctx, { headDim: 64, precision: 'f16', path: 'portable' });
    const buf = ctx.device.createBuffer({ size: 4 * 64 * 2, usage: GPUBufferUsage.STORAGE });
    const out = ctx.device.createBuffer({ size: 4 * 64 * 2, usage: GPUBufferUsage.STORAGE });
    const shape = { batch: 1, heads: 1, seqQ: 4, seqK: 4, headDim: 64 };
    assert.throws(() => fa.run(shape, { q: { buffer: buf, offset: 3 }, k: { buffer: buf }, v: { buffer: buf }, out: { buffer: out } }),
      (e: unknown) => e instanceof InvalidParameterError && /Expected non-negative multiple of 8 for q.offset but received 3/.test(e.message));
    assert.throws(() => fa.run({ ...shape, seqK: 5 }, { q: { buffer: buf }, k: { buffer: buf }, v: { buffer: buf }, out: { buffer: out } }),
      (e: unknown) => e instanceof InvalidParameterError && /k: 1×5 tokens of 64 elements .* need 640 bytes but the buffer has 512/.test(e.message));
    assert.throws(() => fa.run(shape, { q: { buffer: buf }, k: { buffer: buf }, v: { buffer: buf }, out: { buffer: buf } }), /must not share a buffer/);
    for (const b of [buf, out]) b.destroy();
    fa.destroy();
  });
});

describe('subgroup-matrix WGSL', () => {
  // The shaders the H200 runs (subgroups of 32), validated by Dawn's WGSL front end on the null
  // backend, which exposes the feature; pipeline limits (its subgroups of 128, 16 KiB of workgroup
  // memory) do not apply to a shader module. One pipeline is also built where the limits allow.
  test('every shipped and swept shape and the MMA probes compile on the null backend (D = 64 and 128)', async () => {
    const nullCtx = await GpuContext.create({ backend: 'null' });
    try {
      assert.ok(nullCtx.capabilities.subgroupMatrix, 'null backend exposes chromium-experimental-subgroup-matrix');
      const variants: AttentionVariant[] = [];
      for (const headDim of [64, 128]) {
        variants.push(...fastPathCandidates(headDim, 32));
        const long = longSequenceCandidate(headDim, 32);
        if (long) variants.push(long);
        for (const accumulator of ['matrix', 'private'] as const) {
          variants.push({ path: 'subgroup-matrix', headDim, tile: 16, subgroupSize: 32, subgroupsPerWorkgroup: 2, mTilesPerSubgroup: 1, keysPerTile: 32, accumulator, reloadQ: true });
        }
        // design 2 shapes of the --sweep: query tiles per subgroup, 64-key tiles, register prefetch
        for (const [subgroupsPerWorkgroup, mTilesPerSubgroup, keysPerTile] of [[8, 1, 32], [4, 2, 32], [4, 1, 64], [2, 2, 64], [4, 1, 16]]) {
          for (const [prefetch, splitStage, narrowStage, rereadS, compactP] of [[false, false, false, false, false], [true, false, false, false, false], [true, false, true, false, false], [true, true, false, false, false], [true, true, true, false, false], [true, true, true, true, false], [true, false, false, false, true], [true, true, true, true, true]]) {
            const v: AttentionVariant = { path: 'subgroup-matrix-v2', headDim, tile: 16, subgroupSize: 32, subgroupsPerWorkgroup, mTilesPerSubgroup, keysPerTile, emulate: false, alignedFlag: true, prefetch, splitStage, narrowStage, rereadS, compactP };
            if (workgroupBytes(v) <= 49152) variants.push(v);
            if (prefetch && !splitStage && !narrowStage) {
              for (const [doubleBuffer, plainFlagRead, fullTileFast, prescaleQ] of [[true, false, false, false], [true, true, false, false], [false, true, false, false], [true, true, true, true]]) {
                const w: AttentionVariant = { ...v, doubleBuffer, plainFlagRead, fullTileFast, prescaleQ };
                if (workgroupBytes(w) <= 49152) variants.push(w);
              }
            }
          }
        }
      }
      for (const mode of PROBE_MODES) {
        const module = nullCtx.device.createShaderModule({ code: mmaProbeWgsl(mode, 32) });
        const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
        assert.deepEqual(errors.map((m) => m.message), [], `mma-probe ${mode}`);
      }
      for (const v of variants) {
        const module = nullCtx.device.createShaderModule({ code: attentionWgsl(v) });
        const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
        assert.deepEqual(errors.map((m) => m.message), [], variantKey(v));
      }
      const fa = await FlashAttention.create(nullCtx, {
        headDim: 64, precision: 'f16',
        variant: { path: 'subgroup-matrix', headDim: 64, tile: 16, subgroupSize: nullCtx.capabilities.subgroupMaxSize, subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 1, keysPerTile: 16, accumulator: 'matrix' },
      });
      assert.match(fa.name, /^sgmat3-macc-d64/);
      fa.destroy();
    } finally {
      await nullCtx.destroy();
    }
  });

  test('K/V buffers smaller than one 16×16 f16 matrix take the portable kernel (no validation error)', async () => {
    const nullCtx = await GpuContext.create({ backend: 'null' });
    try {
      const dev = nullCtx.device;
      const fa = await FlashAttention.create(nullCtx, {
        headDim: 64, precision: 'f16',
        variant: { path: 'subgroup-matrix', headDim: 64, tile: 16, subgroupSize: nullCtx.capabilities.subgroupMaxSize, subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 1, keysPerTile: 16, accumulator: 'matrix' },
      });
      const pipeline = await nullCtx.pipeline(`flash-attention/${fa.name}`, attentionWgsl(fa.variant));
      const buf = (bytes: number) => dev.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM });
      // the premise: binding a 256-byte K buffer to the matrix kernel itself is refused
      dev.pushErrorScope('validation');
      dev.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [buf(64), buf(256), buf(256), buf(256), buf(16), buf(256)].map((b, i) => ({ binding: i, resource: { buffer: b } })) });
      assert.match((await dev.popErrorScope())?.message ?? '', /minimum binding size \(512\)/);
      for (const seq of [1, 40]) {
        const shape = { batch: 1, heads: 2, seqQ: seq, seqK: seq, headDim: 64 };
        const bytes = seq * 2 * 64 * 2;
        dev.pushErrorScope('validation');
        fa.run(shape, { q: { buffer: buf(bytes) }, k: { buffer: buf(bytes) }, v: { buffer: buf(bytes) }, out: { buffer: buf(bytes) } });
        assert.equal((await dev.popErrorScope())?.message, undefined, `S = ${seq}`);
      }
      fa.destroy();
    } finally {
      await nullCtx.destroy();
    }
  });

  // Design 2's most intricate staging (register prefetch, K and V staged in two places, 4-byte
  // loads, scores re-read, Q staged in two chunks through P's compact scratch) on this adapter with
  // the matrix builtins emulated by plain WGSL: the real kernel's indexing, barriers, masks and
  // partial tiles, at D = 32 so that lavapipe compiles it in seconds.
  test('design 2 with every staging option, emulated, matches the reference (D = 32, mask, partial tiles)', async (t) => {
    const caps = ctx.capabilities;
    if (caps.subgroupMatrix || !caps.subgroups || !caps.shaderF16 || caps.subgroupMinSize !== caps.subgroupMaxSize) {
      t.skip('needs fixed-size subgroups and f16 without the subgroup-matrix feature (the real kernels run elsewhere)');
      return;
    }
    const base = {
      path: 'subgroup-matrix-v2', headDim: 32, tile: 16, subgroupSize: caps.subgroupMaxSize, subgroupsPerWorkgroup: 2, mTilesPerSubgroup: 1, keysPerTile: 16,
      emulate: true, opaqueLoops: true, alignedFlag: true, prefetch: true,
    } as const;
    const variants: AttentionVariant[] = [
      { ...base, splitStage: true, narrowStage: true, rereadS: true, compactP: true },
      // double-buffered staging, the flag read plainly (two barriers a tile), the mask-free softmax
      // for full tiles (50 keys: three full tiles and a partial one) and Q pre-scaled
      { ...base, compactP: true, doubleBuffer: true, plainFlagRead: true, fullTileFast: true, prescaleQ: true },
    ];
    for (const variant of variants) {
      const fa = await FlashAttention.create(ctx, { headDim: 32, precision: 'f16', variant });
      // 50 keys: three full 16-key tiles (both halves of the double buffer, twice) and a partial one
      for (const mask of ['random', 'none'] as const) {
        const r = await checkAttention(ctx, fa, { batch: 2, heads: 2, seqQ: 20, seqK: 50, headDim: 32 }, { seed: 7, mask, spread: 3 });
        assert.deepEqual([r.unwritten, r.guardClobbered, r.nonFinite], [0, 0, 0], `${variantKey(variant)}, mask ${mask}`);
        assert.ok(r.relError <= TOL.f16, `${variantKey(variant)}, mask ${mask}: relative error ${r.relError}`);
      }
      fa.destroy();
    }
  });

  test('refuses shapes it cannot tile', () => {
    assert.throws(() => attentionWgsl({ path: 'subgroup-matrix', headDim: 72, tile: 16, subgroupSize: 32, subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 1, keysPerTile: 64, accumulator: 'matrix' }), /cannot tile D=72/);
    assert.throws(() => attentionWgsl({ path: 'subgroup-matrix', headDim: 64, tile: 16, subgroupSize: 32, subgroupsPerWorkgroup: 1, mTilesPerSubgroup: 1, keysPerTile: 40, accumulator: 'matrix' }), /BC=40/);
  });
});

describe('CPU reference', () => {
  test('equal keys give the mean of the values; a masked key is ignored; all masked gives zeros', () => {
    const shape = { batch: 1, heads: 1, seqQ: 1, seqK: 3, headDim: 8 };
    const q = Array.from({ length: 8 }, (_, i) => i);
    const k = [...q, ...q, ...q];
    const v = Array.from({ length: 24 }, (_, i) => Math.floor(i / 8) * 3);
    assert.deepEqual([...attentionCpu(shape, { q, k, v })], new Array(8).fill(3));
    assert.deepEqual([...attentionCpu(shape, { q, k, v, mask: [1, 0, 1] })], new Array(8).fill(3));
    assert.deepEqual([...attentionCpu(shape, { q, k, v, mask: [0, 1, 0] })], new Array(8).fill(3));
    assert.deepEqual([...attentionCpu(shape, { q, k, v, mask: [0, 0, 0] })], new Array(8).fill(0));
  });
});
