// Forwards in flight at once (issue 7: the host work of one batch under the GPU compute of the
// next): a multi-batch `embed` keeps two sub-batches in flight, and concurrent forwards / calls
// share a plan's input and activation buffers, each with a staging buffer of its own. Every result
// must equal, bit for bit and in its own rows, the same forward run alone and awaited: on the f32
// and byte paths, with patch tokens, past the staging ring (callers waiting for a buffer), with a
// plan evicted from the cache while its forwards run, and after an abort mid-run.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS } from '../../src/encoder/builtin-models.ts';
import { writeVitModel } from '../../src/encoder/model-store.ts';
import { randomVitWeights } from '../../src/encoder/vit-random.ts';
import { WebGpuVitEncoder } from '../../src/encoder/webgpu-vit-encoder.ts';
import { STAGING_RING, type VitForwardResult } from '../../src/encoder/webgpu-vit-model.ts';
import { CancelledError } from '../../src/errors.ts';
import { GpuContext } from '../../kernels/gpu/gpu-context.ts';
import { randomPixels, tempDir } from './helpers.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

const model = BUILTIN_MODELS['untrained-test-tiny']!;
const { inputSize: size, dim: D } = model.config;
const grid = size / model.config.patchSize;
const tileLen = 3 * size * size;

function rgbTiles(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n * tileLen }, (_, i) => (i * 37 + seed * 101 + ((i / 97) | 0)) & 255);
}

describe('WebGPU ViT engine: forwards in flight', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ctx: GpuContext;
  let enc: WebGpuVitEncoder;
  before(async () => {
    tmp = await tempDir();
    ctx = await GpuContext.create();
    const loc = await writeVitModel(`${tmp.dir}/tiny`, model.config, randomVitWeights(model.config, model.seed), {
      name: 'tiny', mean: model.mean, std: model.std, mpp: model.mpp, trained: false,
    });
    enc = await WebGpuVitEncoder.create(loc, { context: ctx, maxBatch: 2 });
  });
  after(async () => { await enc?.close(); await ctx?.destroy(); await tmp?.cleanup(); });

  /** The sub-batches of `run` (2, 2, …, rest) as forwards awaited one at a time. */
  async function serial(input: Float32Array | Uint8Array, n: number, tokens: boolean): Promise<{ embeddings: Float32Array; tokens?: Float32Array }> {
    const out = { embeddings: new Float32Array(n * D), tokens: tokens ? new Float32Array(n * grid * grid * D) : undefined };
    for (let s = 0; s < n; s += 2) {
      const c = Math.min(2, n - s);
      await enc.model.forward(input.subarray(s * tileLen, (s + c) * tileLen), c, size, tokens, { ...out, image: s });
    }
    return out;
  }

  it('a multi-batch embed equals its sub-batches run serially, f32 and bytes, with and without tokens', async () => {
    const n = 7; // sub-batches 2, 2, 2, 1: two plans
    const pixels = randomPixels(n, size, 31), rgb = rgbTiles(n, 3);
    for (const tokens of [false, true]) {
      const want = await serial(pixels, n, tokens);
      const got = await enc.embed(pixels, n, { tokens });
      assert.deepEqual(got.embeddings, want.embeddings, `f32 embeddings, tokens ${tokens}`);
      if (tokens) assert.deepEqual(new Float32Array(got.tokens!), want.tokens, 'f32 tokens');
      const wantRgb = await serial(rgb, n, tokens);
      const gotRgb = await enc.embedRgb(rgb, n, { tokens });
      assert.deepEqual(gotRgb.embeddings, wantRgb.embeddings, `byte embeddings, tokens ${tokens}`);
      if (tokens) assert.deepEqual(new Float32Array(gotRgb.tokens!), wantRgb.tokens, 'byte tokens');
      // The rows are the tiles': the sub-batches differ, so a swap would show.
      assert.notDeepEqual(got.embeddings.subarray(0, 2 * D), got.embeddings.subarray(2 * D, 4 * D));
    }
  });

  it('more concurrent forwards of one plan than staging buffers: each gets its own result', async () => {
    const calls = STAGING_RING + 3;
    const inputs = Array.from({ length: calls }, (_, i) => randomPixels(2, size, 100 + i));
    const want: VitForwardResult[] = [];
    for (const x of inputs) want.push(await enc.model.forward(x, 2, size));
    const got = await Promise.all(inputs.map((x) => enc.model.forward(x, 2, size)));
    got.forEach((r, i) => assert.deepEqual(r.embeddings, want[i]!.embeddings, `call ${i}`));
    // Concurrent encoder calls, each itself split into sub-batches.
    const a = rgbTiles(5, 7), b = rgbTiles(3, 8);
    const [wa, wb] = [await serial(a, 5, false), await serial(b, 3, false)];
    const [ga, gb] = await Promise.all([enc.embedRgb(a, 5), enc.embedRgb(b, 3)]);
    assert.deepEqual(ga.embeddings, wa.embeddings);
    assert.deepEqual(gb.embeddings, wb.embeddings);
  });

  it('a plan evicted from the cache while its forwards run still completes them', async () => {
    // Four batch sizes: the fourth plan evicts the first (the cache holds three) while it is in flight.
    const inputs = [1, 2, 3, 4].map((k) => randomPixels(k, size, 200 + k));
    const want: VitForwardResult[] = [];
    for (const [i, x] of inputs.entries()) want.push(await enc.model.forward(x, i + 1, size, true));
    const got = await Promise.all(inputs.map((x, i) => enc.model.forward(x, i + 1, size, true)));
    got.forEach((r, i) => {
      assert.deepEqual(r.embeddings, want[i]!.embeddings, `${i + 1} images`);
      assert.deepEqual(r.tokens, want[i]!.tokens, `${i + 1} images, tokens`);
    });
  });

  it('an abort mid-run rejects after the forward in flight settles; the engine runs on', async () => {
    const n = 9, pixels = randomPixels(n, size, 41);
    const ac = new AbortController();
    const running = enc.embed(pixels, n, { signal: ac.signal }); // sub-batches 0 and 1 submitted
    ac.abort();
    await assert.rejects(running, CancelledError);
    const want = await serial(pixels, n, false);
    assert.deepEqual((await enc.embed(pixels, n)).embeddings, want.embeddings);
  });
});
