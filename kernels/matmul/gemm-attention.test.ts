// Attention as two batched GEMMs + row softmax against the float64 CPU twin of flash attention, on
// the portable GEMM path (lavapipe): several images and heads so every batch stride is exercised,
// sequences that are not multiples of 8 (padded score rows, V rows past the sequence read as
// zeros), packed QKV rows as the ViT writes them. f32: only f32 rounding remains (≤ 1e-5);
// f16: f16 inputs, P and output (≤ 5e-3). Outputs NaN-poisoned with a guard region.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GpuContext } from '../gpu/gpu-context.ts';
import { GemmAttention, gemmAttentionBytes, paddedSeq } from './gemm-attention.ts';
import { checkGemmAttention } from './gemm-attention-check.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

describe('GEMM attention (portable GEMMs on this adapter)', () => {
  let ctx: GpuContext;
  before(async () => { ctx = await GpuContext.create(); });
  after(async () => { await ctx?.destroy(); });

  for (const precision of ['f32', 'f16'] as const) {
    it(`${precision}: images × heads × seq against the CPU reference`, async () => {
      if (precision === 'f16' && !ctx.capabilities.shaderF16) return;
      const tol = precision === 'f32' ? 1e-5 : 5e-3;
      for (const [i, c] of [{ hd: 16, shape: { images: 3, heads: 2, seq: 13 } }, { hd: 64, shape: { images: 2, heads: 3, seq: 37 } }, { hd: 8, shape: { images: 1, heads: 1, seq: 1 } }].entries()) {
        const ga = await GemmAttention.create(ctx, { headDim: c.hd, precision, path: 'portable' });
        try {
          const err = await checkGemmAttention(ctx, ga, c.shape, 300 + i);
          assert.ok(err <= tol, `${ga.name} ${JSON.stringify(c.shape)} hd ${c.hd}: relative error ${err}`);
        } finally {
          ga.destroy();
        }
      }
    });
  }

  it('sizes its scratch from the padded sequence and refuses long sequences', async () => {
    assert.equal(paddedSeq(197), 200);
    assert.equal(gemmAttentionBytes({ images: 64, heads: 12, seq: 197 }, 'f16'), 64 * 12 * 197 * 200 * 6);
    const ga = await GemmAttention.create(ctx, { headDim: 8, precision: 'f32', path: 'portable' });
    const buf = ctx.device.createBuffer({ size: 64, usage: GPUBufferUsage.STORAGE });
    const out = ctx.device.createBuffer({ size: 64, usage: GPUBufferUsage.STORAGE });
    try {
      assert.throws(() => ga.plan({ images: 1, heads: 1, seq: 10 }, buf, buf), /must not share/);
      assert.throws(() => ga.plan({ images: 1, heads: 1, seq: 5000 }, buf, out), /at most 4096/);
      assert.throws(() => ga.plan({ images: 1, heads: 1, seq: 10 }, buf, out), /needs \d+ bytes/);
    } finally {
      buf.destroy();
      out.destroy();
      ga.destroy();
    }
  });
});
