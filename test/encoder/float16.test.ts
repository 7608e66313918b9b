import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromF16Bits, toF16Bits } from '../../kernels/gpu/f16.ts';
import { decodeBfloat16, decodeFloat16, encodeFloat16 } from '../../src/encoder/float16.ts';

describe('float16', () => {
  it('encodes known values, rounding to nearest even, overflowing to infinity', () => {
    const cases: Array<[number, number]> = [
      [1, 0x3c00], [-2, 0xc000], [0.1, 0x2e66], [65504, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00],
      [2 ** -24, 0x0001], [2 ** -26, 0x0000], [2 ** -14, 0x0400], [-0, 0x8000],
      [1 + 2 ** -11, 0x3c00], // tie → even mantissa
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even mantissa (up)
      [Infinity, 0x7c00], [-Infinity, 0xfc00],
    ];
    for (const [value, bits] of cases) assert.equal(toF16Bits(value), bits, `value ${value}`);
    assert.equal(toF16Bits(NaN) & 0x7c00, 0x7c00);
    assert.ok(Number.isNaN(fromF16Bits(toF16Bits(NaN))));
  });

  it('decodes every finite half exactly and round-trips through bytes', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      const v = fromF16Bits(h);
      assert.equal(toF16Bits(v), h === 0x8000 ? 0x8000 : h);
    }
    const values = new Float32Array([0.5, -1.25, 3, 1024]);
    assert.deepEqual(decodeFloat16(encodeFloat16(values)), values);
    assert.deepEqual([...decodeBfloat16(new Uint8Array([0x80, 0x3f, 0x40, 0xc0]))], [1, -3]);
  });
});
