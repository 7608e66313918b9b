import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { roundToFloat16 } from '../../src/encoder/float16.ts';
import { decodeSafetensors, encodeSafetensors, readSafetensors } from '../../src/encoder/safetensors.ts';
import type { Tensor } from '../../src/encoder/vit-config.ts';
import { SeededRandom } from '../../src/encoder/vit-random.ts';
import { tempDir } from './helpers.ts';

function sample(): Map<string, Tensor> {
  const rng = new SeededRandom(5);
  return new Map([
    ['b.weight', { shape: [3, 5], data: rng.fillUniform(new Float32Array(15), 1) }],
    ['a.bias', { shape: [7], data: rng.fillUniform(new Float32Array(7), 3) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ]);
}

/** A file with a hand-written header (padded) and `data`. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0), declaredLength?: bigint): Uint8Array {
  const h = Buffer.from(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips float32 exactly, with metadata, in memory and through a file', async () => {
    const tensors = sample();
    const bytes = encodeSafetensors(tensors, { metadata: { 'lamina.name': 'x' } });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(headerLen % 8, 0);
    const { dir, cleanup } = await tempDir();
    try {
      await writeFile(`${dir}/t.safetensors`, bytes);
      for (const decoded of [decodeSafetensors(bytes), await readSafetensors(`${dir}/t.safetensors`)]) {
        assert.deepEqual(decoded.metadata, { 'lamina.name': 'x' });
        assert.deepEqual([...decoded.tensors.keys()].sort(), ['a.bias', 'b.weight', 'empty']);
        for (const [name, t] of tensors) {
          assert.deepEqual(decoded.tensors.get(name)!.shape, t.shape);
          assert.deepEqual(decoded.tensors.get(name)!.data, t.data);
        }
      }
    } finally {
      await cleanup();
    }
  });

  it('writes F16 rounded to nearest and the bytes depend only on the input', () => {
    const tensors = sample();
    const f16 = decodeSafetensors(encodeSafetensors(tensors, { dtype: 'F16' }));
    const w = tensors.get('b.weight')!.data;
    assert.deepEqual(f16.tensors.get('b.weight')!.data, roundToFloat16(new Float32Array(w)));
    const reordered = new Map([...tensors].reverse());
    assert.deepEqual(encodeSafetensors(reordered), encodeSafetensors(tensors));
  });

  it('reads BF16 as the top half of float32', () => {
    const data = new Uint8Array([0x80, 0x3f, 0x00, 0xc0]); // 1.0, -2.0
    const file = rawFile(JSON.stringify({ x: { dtype: 'BF16', shape: [2], data_offsets: [0, 4] } }), data);
    assert.deepEqual([...decodeSafetensors(file).tensors.get('x')!.data], [1, -2]);
  });

  it('refuses broken headers with clear messages', () => {
    assert.throws(() => decodeSafetensors(new Uint8Array(4), 'f'), /f: not a safetensors file \(shorter than 8 bytes\)/);
    assert.throws(() => decodeSafetensors(rawFile('{}', new Uint8Array(0), 1n << 40n), 'f'),
      /f: not a safetensors file \(header length 1099511627776 exceeds 2 bytes\)/);
    assert.throws(() => decodeSafetensors(rawFile('{not json'), 'f'), /f: safetensors header is not valid UTF-8 JSON/);
    assert.throws(() => decodeSafetensors(rawFile(JSON.stringify({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), new Uint8Array(8)), 'f'),
      /f: tensor 'x': data_offsets \[0, 16\] lie outside the 8 data bytes/);
    assert.throws(() => decodeSafetensors(rawFile(JSON.stringify({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }), new Uint8Array(8)), 'f'),
      /f: tensor 'x': shape \[3\] of F32 needs 12 bytes, data_offsets give 8/);
    assert.throws(() => decodeSafetensors(rawFile(JSON.stringify({ x: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }), new Uint8Array(1)), 'f'),
      /f: tensor 'x': unknown dtype "Q4"/);
    assert.throws(() => decodeSafetensors(rawFile(JSON.stringify({ x: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }), new Uint8Array(8)), 'f'),
      /f: tensor 'x': dtype I64 is not a float type/);
  });
});
