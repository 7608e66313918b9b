import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ModelManifest } from '../../src/encoder/manifest.ts';
import { preprocessTiles, sourceTileSize } from '../../src/encoder/preprocess.ts';
import type { RgbImage } from '../../src/readers/types.ts';

const manifest = {
  inputSize: 8, mpp: 0.5, mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.1],
} as unknown as ModelManifest;

function solid(width: number, height: number, rgb: [number, number, number]): RgbImage {
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}

/** Normalised value of byte v in channel c. */
const norm = (v: number, c: number) => (v / 255 - manifest.mean[c]!) / manifest.std[c]!;
const at = (out: Float32Array, tile: number, c: number, y: number, x: number) => out[tile * 3 * 64 + c * 64 + y * 8 + x]!;

describe('preprocessTiles', () => {
  it('normalises into planar NCHW with the manifest mean/std', async () => {
    const tile = solid(8, 8, [10, 20, 30]);
    tile.data.set([200, 100, 50], (3 * 8 + 5) * 3); // pixel (y=3, x=5)
    const out = await preprocessTiles([solid(8, 8, [0, 0, 0]), tile], manifest);
    assert.equal(out.length, 2 * 3 * 64);
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(at(out, 0, c, 0, 0) - norm(0, c)) < 1e-6);
      assert.ok(Math.abs(at(out, 1, c, 0, 0) - norm([10, 20, 30][c]!, c)) < 1e-6);
      assert.ok(Math.abs(at(out, 1, c, 3, 5) - norm([200, 100, 50][c]!, c)) < 1e-6);
    }
  });

  it('scales by srcMpp / mpp and keeps the layout (left half dark stays left)', async () => {
    const tile = solid(16, 16, [255, 255, 255]);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 8; x++) tile.data.set([0, 0, 0], (y * 16 + x) * 3);
    const out = await preprocessTiles([tile], manifest, { srcMpp: 0.25 });
    // sharp's Lanczos-3 rings by a level or two next to the edge: allow 2/255.
    const tol = 2 / (255 * manifest.std[0]!) + 1e-6;
    for (const x of [0, 1, 2]) assert.ok(Math.abs(at(out, 0, 0, 4, x) - norm(0, 0)) <= tol, `x=${x}`);
    for (const x of [5, 6, 7]) assert.ok(Math.abs(at(out, 0, 0, 4, x) - norm(255, 0)) <= tol, `x=${x}`);
    assert.equal(sourceTileSize(manifest, 0.25), 16);
  });

  it('pads a tile that covers less than the field of view with white, centred', async () => {
    const out = await preprocessTiles([solid(2, 2, [255, 0, 0])], manifest, { srcMpp: 1 }); // → 4×4 in an 8×8 frame
    assert.ok(Math.abs(at(out, 0, 1, 0, 0) - norm(255, 1)) < 1e-6); // corner: white
    assert.ok(Math.abs(at(out, 0, 1, 4, 4) - norm(0, 1)) < 1e-3); // centre: red has no green
    assert.ok(Math.abs(at(out, 0, 0, 4, 4) - norm(255, 0)) < 1e-3);
  });

  it('refuses a tile whose data does not match its size', async () => {
    await assert.rejects(preprocessTiles([{ width: 4, height: 4, data: Buffer.alloc(10) }], manifest),
      /Expected 4 × 4 × 3 for tiles\[0\].data.length but received 10 of type number/);
  });
});
