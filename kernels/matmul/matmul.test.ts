// GEMM kernel against its float64 CPU twin on awkward shapes (not multiples of the 64×64 tile,
// M = 1), every epilogue, both precisions. Tolerance from precision: f32 storage leaves only
// float32 rounding of the sums (≤ 1e-5 relative); f16 storage rounds every output to 11 bits
// (≤ 2e-3 relative; inputs are f16-rounded before the CPU twin sees them, so only output and
// accumulation-order rounding remain). Outputs are NaN-poisoned with a guard region behind them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GpuContext } from '../gpu/gpu-context.ts';
import { checkMatmul } from './matmul-check.ts';
import { matmulKey, matmulWgsl, parseShapeSpec, shapeSpec, workgroupBytes, type SubgroupMatrixMatmul } from './matmul-wgsl.ts';
import { bindAll, uniformWords } from '../dispatch/dispatch.ts';
import { DEFAULT_GEMM_SPEC, GEMM_SHAPE_DEFAULTS, resolveGemmSpec, withEpilogueTiles } from './matmul.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

describe('matmul kernel (portable path on this adapter)', () => {
  let ctx: GpuContext;
  before(async () => { ctx = await GpuContext.create(); });
  after(async () => { await ctx?.destroy(); });

  const shapes = [
    { M: 1, N: 8, K: 8 }, { M: 7, N: 72, K: 24 }, { M: 65, N: 130, K: 100 }, { M: 130, N: 64, K: 17 },
  ];
  for (const precision of ['f32', 'f16'] as const) {
    const tol = precision === 'f32' ? 1e-5 : 2e-3;
    shapes.forEach((s, i) => {
      it(`${precision} M=${s.M} N=${s.N} K=${s.K}: bias, GELU, residual with layer scale`, async () => {
        if (precision === 'f16' && !ctx.capabilities.shaderF16) return;
        for (const [j, epi] of [{}, { gelu: true }, { residual: true }, { residual: true, layerScale: true }].entries()) {
          const r = await checkMatmul(ctx, { ...s, ...epi, precision, seed: 10 * i + j + 1, path: 'portable' });
          assert.ok(r.error <= tol, `${r.kernel} ${JSON.stringify(epi)}: relative error ${r.error} > ${tol}`);
        }
      });
    });
    it(`${precision}: W given as [N, K] (Q·Kᵀ), f32 output`, async () => {
      if (precision === 'f16' && !ctx.capabilities.shaderF16) return;
      for (const [j, s] of [{ M: 37, N: 29, K: 16 }, { M: 70, N: 66, K: 40 }].entries()) {
        const r = await checkMatmul(ctx, { ...s, precision, transposeW: true, outF32: true, seed: 90 + j, path: 'portable' });
        // f32 output keeps the accumulation: f32 rounding of sums of f16-exact inputs only
        assert.ok(r.error <= 1e-5, `${r.kernel}: relative error ${r.error}`);
      }
    });
  }
});

// The tensor-core kernels cannot run here (lavapipe has no subgroup matrices; their results are
// checked on the H200 by `lamina bench encoder --check` and bench/encoder-gemm.ts), so their
// generated WGSL is compiled on Dawn's null backend, which has the feature, for every code path:
// one or two stages, staged or direct W, transposed W, f32 output, each epilogue. The null
// backend allows 16 KiB of workgroup memory, so the tiles are small; the generator is the same.
describe('subgroup-matrix GEMM WGSL (null backend)', () => {
  it('tiling specs round-trip', () => {
    for (const spec of ['128x128x32-sg4x2-s1', '128x128x32-sg2x2-s2-wd', '64x128x32-sg2x2-s2', '128x256x32-sg2x4-s2-wp', '128x128x32-sg4x2-s2-xd', '64x128x32-sg2x2-s2-xp']) {
      assert.equal(shapeSpec({ ...parseShapeSpec(spec), path: 'subgroup-matrix', subgroupSize: 32, tile: 16, gelu: false, residual: false, transposeW: false, outF32: false }), spec);
    }
    assert.throws(() => parseShapeSpec('128x128'), /expected/);
  });

  it('epilogue rounds take the most tiles whose scratch fits', () => {
    const v = (spec: string): SubgroupMatrixMatmul => ({ ...parseShapeSpec(spec), path: 'subgroup-matrix', subgroupSize: 32, tile: 16, gelu: false, residual: false, transposeW: false, outF32: false });
    assert.equal(withEpilogueTiles(v('64x128x32-sg2x2-s2-wd'), 49152).epiTiles, 4);
    assert.equal(withEpilogueTiles(v('128x128x32-sg4x2-s2-wd'), 49152).epiTiles, 2);
    assert.equal(withEpilogueTiles(v('256x128x32-sg4x2-s2-wd'), 49152).epiTiles, undefined);
    for (const spec of ['64x128x32-sg2x2-s2-wd', '128x256x32-sg2x4-s2-wp', '128x128x64-sg4x2-s2-wd']) {
      const w = withEpilogueTiles(v(spec), 49152);
      assert.ok(workgroupBytes(w) <= 49152, `${spec}: ${workgroupBytes(w)} B`);
    }
  });

  it('per-role tilings: defaults by shape, one spec for all, or a role table', () => {
    const vit = { qkv: { N: 2304, K: 768 }, proj: { N: 768, K: 768, residual: true }, fc1: { N: 3072, K: 768, gelu: true }, fc2: { N: 768, K: 3072, residual: true } };
    for (const [role, o] of Object.entries(vit)) {
      assert.deepEqual(resolveGemmSpec(undefined, o), { spec: GEMM_SHAPE_DEFAULTS[role as keyof typeof vit], explicit: false });
      assert.deepEqual(resolveGemmSpec('64x64x32-sg2x2-s1', o), { spec: '64x64x32-sg2x2-s1', explicit: true });
    }
    // Attention products and odd shapes are no role.
    assert.equal(resolveGemmSpec(undefined, { N: 8, K: 64, transposeW: true, outF32: true }).spec, DEFAULT_GEMM_SPEC);
    assert.equal(resolveGemmSpec(undefined, { N: 768, K: 768 }).spec, DEFAULT_GEMM_SPEC);
    const table = 'qkv=128x256x32-sg2x4-s2-wp,fc2=64x64x32-sg2x2-s2-wd';
    assert.equal(resolveGemmSpec(table, vit.qkv).spec, '128x256x32-sg2x4-s2-wp');
    assert.equal(resolveGemmSpec(table, vit.fc2).spec, '64x64x32-sg2x2-s2-wd');
    assert.deepEqual(resolveGemmSpec(table, vit.fc1), { spec: GEMM_SHAPE_DEFAULTS.fc1, explicit: false });
    assert.throws(() => resolveGemmSpec('attn=64x64x32-sg2x2-s1', vit.qkv), /ROLE=TILING/);
    assert.throws(() => resolveGemmSpec('qkv=64x64', vit.qkv), /expected/);
    process.env.LAMINA_GEMM_SPEC = '128x128x32-sg4x2-s2-wd';
    try {
      assert.deepEqual(resolveGemmSpec(undefined, vit.fc1), { spec: '128x128x32-sg4x2-s2-wd', explicit: false });
      assert.equal(resolveGemmSpec('64x64x32-sg2x2-s1', vit.fc1).spec, '64x64x32-sg2x2-s1');
    } finally {
      delete process.env.LAMINA_GEMM_SPEC;
    }
  });

  it('every code path compiles', async () => {
    const nullCtx = await GpuContext.create({ backend: 'null' });
    try {
      assert.ok(nullCtx.capabilities.subgroupMatrix, 'null backend exposes chromium-experimental-subgroup-matrix');
      // Dawn wants the workgroup a multiple of the largest subgroup size (128 here).
      const base = { path: 'subgroup-matrix' as const, subgroupSize: nullCtx.capabilities.subgroupMaxSize, tile: 16, gelu: false, residual: false, transposeW: false, outF32: false };
      const variants: SubgroupMatrixMatmul[] = [
        { ...base, ...parseShapeSpec('32x32x16-sg1x1-s1') },
        { ...base, ...parseShapeSpec('32x32x32-sg1x1-s2'), gelu: true },
        { ...base, ...parseShapeSpec('64x32x32-sg1x1-s2'), residual: true },
        { ...base, ...parseShapeSpec('32x32x32-sg1x1-s2-wd'), gelu: true },
        { ...base, ...parseShapeSpec('32x32x16-sg1x1-s1-wd'), residual: true },
        { ...base, ...parseShapeSpec('32x32x32-sg1x1-s2'), transposeW: true, outF32: true },
        { ...base, ...parseShapeSpec('32x32x16-sg1x1-s1'), transposeW: true },
        { ...base, ...parseShapeSpec('32x32x32-sg1x1-s2-wp'), gelu: true },
        { ...base, ...parseShapeSpec('32x32x16-sg1x1-s1-wp'), residual: true },
        { ...base, ...parseShapeSpec('64x32x32-sg1x1-s2-wp'), residual: true },
        // Grouped epilogue rounds (straight-line lane runs of T²/SG columns).
        { ...base, ...parseShapeSpec('32x32x32-sg1x1-s2-wp'), gelu: true, residual: true, epiTiles: 4 },
        { ...base, ...parseShapeSpec('32x32x32-sg1x1-s2-wd'), gelu: true, epiTiles: 2 },
        { ...base, ...parseShapeSpec('32x32x16-sg1x1-s1'), transposeW: true, outF32: true, epiTiles: 2 },
        // X and W straight from storage (no staging, no barrier in the K loop).
        { ...base, ...parseShapeSpec('32x32x32-sg1x1-s2-xd'), gelu: true, epiTiles: 4 },
        { ...base, ...parseShapeSpec('64x32x16-sg1x1-s1-xd'), residual: true, epiTiles: 2 },
        { ...base, ...parseShapeSpec('32x32x32-sg1x1-s2-xp'), residual: true, epiTiles: 4 },
        { ...base, ...parseShapeSpec('64x32x16-sg1x1-s1-xp'), gelu: true },
      ];
      const dev = nullCtx.device;
      const buf = () => dev.createBuffer({ size: 1 << 16, usage: GPUBufferUsage.STORAGE });
      const bufs = [buf(), buf(), buf(), buf(), buf()];
      const uniform = uniformWords(dev, [32, 32, 32, 32, 32, 32, 32, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      for (const v of variants) {
        assert.ok(workgroupBytes(v) <= dev.limits.maxComputeWorkgroupStorageSize);
        const pipeline = await nullCtx.pipeline(`test/${matmulKey(v)}`, matmulWgsl(v));
        // Bind all five buffers as Matmul does: the layout comes from the shader, so a binding a
        // variant leaves statically unused fails here (it did on the H200 once).
        dev.pushErrorScope('validation');
        const enc = dev.createCommandEncoder();
        const pass = enc.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindAll(dev, pipeline, uniform, bufs));
        pass.dispatchWorkgroups(1, 1, 1);
        pass.end();
        dev.queue.submit([enc.finish()]);
        const err = await dev.popErrorScope();
        assert.equal(err, null, `${matmulKey(v)}: ${err?.message}`);
      }
      await nullCtx.sync();
      for (const b of [...bufs, uniform]) b.destroy();
    } finally {
      await nullCtx.destroy();
    }
  });
});
