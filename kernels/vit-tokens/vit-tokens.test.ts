// Token assembly vs its twin (0, 1 and 5 prefix tokens, f32 exact up to rounding, f16 ≤ 2e-3),
// and the position-table resize: identity at the trained grid, constant grids stay constant,
// bilinear matches src/encoder's resizePosEmbed (the import path), bicubic (Keys a = −0.75, torch's
// choice, which is not exact on ramps) stays within a tenth of a cell of a linear ramp and monotone.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { resizePosEmbed } from '../../src/encoder/timm-import.ts';
import { GpuContext } from '../gpu/gpu-context.ts';
import { guardedOutput, randomUniform, readGuarded, roundTo, uploadTensor } from '../dispatch/check.ts';
import { destroyDispatch, recordDispatch } from '../dispatch/dispatch.ts';
import { relativeError } from '../matmul/matmul.cpu.ts';
import { positionTable, resizePosGrid } from './pos-embed.ts';
import { VitTokens } from './vit-tokens.ts';
import { vitTokensCpu } from './vit-tokens.cpu.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

describe('vit-tokens kernel', () => {
  let ctx: GpuContext;
  before(async () => { ctx = await GpuContext.create(); });
  after(async () => { await ctx?.destroy(); });
  for (const precision of ['f32', 'f16'] as const) {
    for (const [images, grid, prefix, D] of [[1, 1, 0, 8], [3, 5, 1, 24], [2, 3, 5, 40]] as const) {
      it(`${precision} ${images} images, grid ${grid}, prefix ${prefix}, D=${D}`, async () => {
        const vt = await VitTokens.create(ctx, precision);
        const seq = prefix + grid * grid;
        const patches = roundTo(randomUniform(images * grid * grid * D, 1), precision);
        const pre = roundTo(randomUniform(Math.max(1, prefix) * D, 2), precision);
        const pos = roundTo(randomUniform(seq * D, 3, 0.1), precision);
        const bufs = [uploadTensor(ctx, patches, precision), uploadTensor(ctx, pre, precision), uploadTensor(ctx, pos, precision)];
        const out = guardedOutput(ctx, images * seq * D, precision);
        const d = vt.prepare({ images, seq, prefix, D }, { patches: bufs[0]!, prefixTokens: bufs[1]!, pos: bufs[2]!, out });
        const enc = ctx.device.createCommandEncoder();
        const pass = enc.beginComputePass();
        recordDispatch(pass, d);
        pass.end();
        ctx.device.queue.submit([enc.finish()]);
        const got = await readGuarded(ctx, out, images * seq * D, precision);
        destroyDispatch(d);
        for (const b of [...bufs, out]) b.destroy();
        const err = relativeError(got, vitTokensCpu(patches, pre, pos, images, seq, prefix, D));
        assert.ok(err <= (precision === 'f32' ? 1e-6 : 2e-3), `relative error ${err}`);
      });
    }
  }
});

describe('position table', () => {
  it('keeps the trained grid and the prefix rows', () => {
    const pos = randomUniform((1 + 16) * 4, 9);
    assert.deepEqual(positionTable(pos, 4, 1, true, 4), pos);
    const noPrefix = positionTable(pos.subarray(4), 4, 3, false, 4);
    assert.deepEqual(noPrefix.subarray(0, 12), new Float32Array(12));
    assert.deepEqual(noPrefix.subarray(12), pos.subarray(4));
  });
  it('bilinear matches the import path; bicubic follows a ramp closely and monotonically', () => {
    const grid = randomUniform(7 * 7 * 3, 4);
    const ref = resizePosEmbed({ shape: [1, 49, 3], data: grid }, 0, 7, 12).data;
    assert.ok(relativeError(resizePosGrid(grid, 7, 12, 3, 'bilinear'), ref) < 1e-6);
    const ramp = new Float32Array(8 * 8).map((_, i) => (i % 8) + 2 * Math.floor(i / 8));
    const up = resizePosGrid(ramp, 8, 16, 1, 'bicubic');
    for (let oy = 4; oy < 12; oy++) for (let ox = 4; ox < 12; ox++) {
      const fx = (ox + 0.5) / 2 - 0.5, fy = (oy + 0.5) / 2 - 0.5;
      assert.ok(Math.abs(up[oy * 16 + ox]! - (fx + 2 * fy)) < 0.1 * 3, `(${ox}, ${oy})`);
      assert.ok(up[oy * 16 + ox + 1]! > up[oy * 16 + ox]!);
    }
    const flat = resizePosGrid(new Float32Array(25).fill(0.25), 5, 11, 1, 'bicubic');
    assert.ok(flat.every((v) => Math.abs(v - 0.25) < 1e-6));
  });
});
