/** Host f16 conversion: exact values, rounding to nearest even, subnormals, overflow, NaN. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromF16Bits, toF16Bits } from './f16.ts';

test('known values convert exactly both ways', () => {
  const cases: [number, number][] = [[0, 0x0000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [2 ** -14, 0x0400], [2 ** -24, 0x0001]];
  for (const [x, bits] of cases) {
    assert.equal(toF16Bits(x), bits, `toF16Bits(${x})`);
    assert.equal(fromF16Bits(bits), x, `fromF16Bits(${bits.toString(16)})`);
  }
});

test('rounding is to nearest, ties to even; overflow is Inf; NaN stays NaN', () => {
  assert.equal(toF16Bits(1 + 2 ** -11), 0x3c00); // tie → even (down)
  assert.equal(toF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  assert.equal(toF16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01); // above the tie
  assert.equal(toF16Bits(65520), 0x7c00);
  assert.equal(toF16Bits(-1e9), 0xfc00);
  assert.ok(Number.isNaN(fromF16Bits(toF16Bits(NaN))));
  assert.equal(toF16Bits(2 ** -26), 0); // below half the smallest subnormal
});

test('every f16 bit pattern survives a round trip', () => {
  for (let bits = 0; bits < 0x10000; bits++) {
    const x = fromF16Bits(bits);
    if (Number.isNaN(x)) continue;
    assert.equal(toF16Bits(x), bits, `bits ${bits.toString(16)}`);
  }
});

test('the table decode gives fromF16Bits for every pattern, -0 included', async () => {
  const { fromF16Array, decodeF16Into } = await import('./f16.ts');
  const all = new Uint16Array(0x10000).map((_, i) => i);
  const got = fromF16Array(all);
  for (let bits = 0; bits < 0x10000; bits++) assert.ok(Object.is(got[bits], Math.fround(fromF16Bits(bits))), `bits ${bits.toString(16)}`);
  const out = new Float32Array(4);
  decodeF16Into(new Uint16Array([0x3c00, 0xc000, 0x3800]), 1, 2, out, 1);
  assert.deepEqual([...out], [0, -2, 0.5, 0]);
});
