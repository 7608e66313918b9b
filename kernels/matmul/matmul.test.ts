// GEMM kernel against its float64 CPU twin on awkward shapes (not multiples of the 64×64 tile,
// M = 1), every epilogue, both precisions. Tolerance from precision: f32 storage leaves only
// float32 rounding of the sums (≤ 1e-5 relative); f16 storage rounds every output to 11 bits
// (≤ 2e-3 relative; inputs are f16-rounded before the CPU twin sees them, so only output and
// accumulation-order rounding remain). Outputs are NaN-poisoned with a guard region behind them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GpuContext } from '../gpu/gpu-context.ts';
import { checkMatmul } from './matmul-check.ts';

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
  }
});
