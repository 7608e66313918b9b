// LayerNorm kernel vs its float64 twin: widths below, at and above the 64-invocation workgroup,
// rows with a large common offset (where a one-pass variance would cancel), strided row selection.
// f32: ≤ 1e-5 relative; f16: output rounding, ≤ 2e-3. Outputs NaN-poisoned with a guard region.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GpuContext } from '../gpu/gpu-context.ts';
import { guardedOutput, randomUniform, readGuarded, roundTo, uploadTensor } from '../dispatch/check.ts';
import { destroyDispatch, recordDispatch } from '../dispatch/dispatch.ts';
import { relativeError } from '../matmul/matmul.cpu.ts';
import { LayerNorm } from './layernorm.ts';
import { layerNormCpu } from './layernorm.cpu.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

describe('layernorm kernel', () => {
  let ctx: GpuContext;
  before(async () => { ctx = await GpuContext.create(); });
  after(async () => { await ctx?.destroy(); });
  for (const precision of ['f32', 'f16'] as const) {
    for (const [rows, D, step, offset] of [[1, 8, 1, 0], [5, 64, 1, 3], [9, 200, 3, 0], [33, 72, 1, 40]] as const) {
      it(`${precision} rows=${rows} D=${D} step=${step} offset=${offset}`, async () => {
        const ln = await LayerNorm.create(ctx, precision);
        const inRows = (rows - 1) * step + 1;
        const x = roundTo(randomUniform(inRows * D, rows * 31 + D).map((v) => v + offset), precision);
        const g = roundTo(randomUniform(D, 5, 1), precision), b = roundTo(randomUniform(D, 6, 0.5), precision);
        const bufs = [uploadTensor(ctx, x, precision), uploadTensor(ctx, g, precision), uploadTensor(ctx, b, precision)];
        const out = guardedOutput(ctx, rows * D, precision);
        const d = ln.prepare({ rows, D, eps: 1e-6, step }, { x: bufs[0]!, gamma: bufs[1]!, beta: bufs[2]!, out });
        const enc = ctx.device.createCommandEncoder();
        const pass = enc.beginComputePass();
        recordDispatch(pass, d);
        pass.end();
        ctx.device.queue.submit([enc.finish()]);
        const got = await readGuarded(ctx, out, rows * D, precision);
        destroyDispatch(d);
        for (const buf of [...bufs, out]) buf.destroy();
        const err = relativeError(got, layerNormCpu(x, rows, D, g, b, 1e-6, step));
        // f16 inputs with a large offset keep only a few bits of the deviation: compare to the
        // twin on the same rounded inputs, so the bound is the output rounding alone.
        assert.ok(err <= (precision === 'f32' ? 1e-5 : 2e-3), `relative error ${err}`);
      });
    }
  }
});
