// The WebGPU ViT engine against OrtEncoder (onnxruntime CPU EP) on the same generated model files
// and inputs: class/register tokens, layer scale, DINOv2-style position embeddings, patch 8 and 14,
// several input sizes (the model rebuilt at each size, as a region-size run would see it), batches
// split across forwards. Bound: cosine ≥ 0.999 per embedding and per patch token (the issue's
// floor; f16 activations keep ~3 significant digits through the blocks, ORT runs f32).
// Also: the f32 path (no f16 anywhere) agrees to 1e-4 in cosine distance, and a larger input on the
// same weights runs through the interpolated position table.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS } from '../../src/encoder/builtin-models.ts';
import { writeVitModel } from '../../src/encoder/model-store.ts';
import { OrtEncoder } from '../../src/encoder/ort-encoder.ts';
import { randomVitWeights } from '../../src/encoder/vit-random.ts';
import { WebGpuVitEncoder } from '../../src/encoder/webgpu-vit-encoder.ts';
import { preprocessTiles } from '../../src/encoder/preprocess.ts';
import { GpuContext } from '../../kernels/gpu/gpu-context.ts';
import { minRowCosine, randomPixels, tempDir } from './helpers.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

const cases = [
  { name: 'untrained-test-tiny', sizes: [64, 40] },
  { name: 'untrained-vit-tiny-p14-reg4', sizes: [98, 56] },
];

describe('WebGpuVitEncoder vs OrtEncoder', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let ctx: GpuContext;
  before(async () => { tmp = await tempDir(); ctx = await GpuContext.create(); });
  after(async () => { await ctx?.destroy(); await tmp?.cleanup(); });

  for (const c of cases) {
    for (const size of c.sizes) {
      it(`${c.name} at ${size} px`, async () => {
        const model = BUILTIN_MODELS[c.name]!;
        const config = { ...model.config, inputSize: size };
        // Same weights at another input size: the position grid is resized (bilinear, as import does).
        const weights = randomVitWeights(model.config, model.seed);
        if (size !== model.config.inputSize) {
          const { resizePosEmbed } = await import('../../src/encoder/timm-import.ts');
          const prefixRows = model.config.posEmbedIncludesPrefix ? 1 + model.config.numRegisterTokens : 0;
          weights.set('pos_embed', resizePosEmbed(weights.get('pos_embed')!, prefixRows, model.config.inputSize / model.config.patchSize, size / model.config.patchSize));
        }
        const loc = await writeVitModel(`${tmp.dir}/${c.name}-${size}`, config, weights, {
          name: `${c.name}-${size}`, mean: model.mean, std: model.std, mpp: model.mpp, trained: false,
        });
        const ort = await OrtEncoder.create(loc, { threads: 1 });
        const gpu = await WebGpuVitEncoder.create(loc, { context: ctx, maxBatch: 2 });
        try {
          const n = 3;
          const pixels = randomPixels(n, size, size);
          const want = await ort.embed(pixels, n, { tokens: true });
          const got = await gpu.embed(pixels, n, { tokens: true });
          const d = config.dim;
          const ce = minRowCosine(got.embeddings, want.embeddings, d);
          const ct = minRowCosine(got.tokens!, want.tokens!, d);
          assert.ok(ce >= 0.999, `embedding cosine ${ce}`);
          assert.ok(ct >= 0.999, `token cosine ${ct}`);
          assert.deepEqual(got.tokenGrid, [size / config.patchSize, size / config.patchSize]);
          // without tokens: only the class rows are normalised and read back; same values
          const plain = await gpu.embed(pixels, n);
          assert.ok(minRowCosine(plain.embeddings, got.embeddings, d) > 0.99999);
        } finally {
          await gpu.close();
          await ort.close();
        }
      });
    }
  }

  it('f32 path agrees with ORT to 1e-4, and a region larger than the trained size runs', async () => {
    const model = BUILTIN_MODELS['untrained-test-tiny']!;
    const loc = await writeVitModel(`${tmp.dir}/f32`, model.config, randomVitWeights(model.config, model.seed), {
      name: 'f32', mean: model.mean, std: model.std, mpp: model.mpp, trained: false,
    });
    const ort = await OrtEncoder.create(loc, { threads: 1 });
    const gpu = await WebGpuVitEncoder.create(loc, { context: ctx, precision: 'f32' });
    try {
      const pixels = randomPixels(2, 64, 5);
      const want = await ort.embed(pixels, 2);
      const got = await gpu.embed(pixels, 2);
      assert.ok(1 - minRowCosine(got.embeddings, want.embeddings, 64) < 1e-4);
      const region = await gpu.embedRegion(randomPixels(1, 128, 6), 1, 128, { tokens: true });
      assert.deepEqual(region.tokenGrid, [16, 16]);
      assert.equal(region.tokens!.length, 256 * 64);
      assert.ok(region.tokens!.every(Number.isFinite));
      await assert.rejects(gpu.embedRegion(new Float32Array(3 * 60 * 60), 1, 60), /multiple of the patch size/);
    } finally {
      await gpu.close();
      await ort.close();
    }
  });

  // Byte tiles (the analysis path, issue 7): RGB bytes normalised on the GPU through the host's
  // own table give exactly the embeddings and tokens of the host-normalised f32 input, at both
  // precisions, batches split over forwards, and agree with ORT on that input.
  it('embedRgb equals embed of preprocessTiles output, f16 and f32', async () => {
    const model = BUILTIN_MODELS['untrained-test-tiny']!;
    const loc = await writeVitModel(`${tmp.dir}/rgb8`, model.config, randomVitWeights(model.config, model.seed), {
      name: 'rgb8', mean: model.mean, std: model.std, mpp: model.mpp, trained: false,
    });
    const ort = await OrtEncoder.create(loc, { threads: 1 });
    const size = model.config.inputSize, n = 3, len = size * size * 3;
    const tiles = Array.from({ length: n }, (_, t) => ({ width: size, height: size, data: Buffer.from(Uint8Array.from({ length: len }, (_, i) => (i * 37 + t * 101 + ((i / 97) | 0)) & 255)) }));
    const rgb = new Uint8Array(n * len);
    tiles.forEach((t, i) => rgb.set(t.data, i * len));
    const pixels = await preprocessTiles(tiles, ort.manifest);
    const want = await ort.embed(pixels, n, { tokens: true });
    for (const precision of ['f16', 'f32'] as const) {
      const gpu = await WebGpuVitEncoder.create(loc, { context: ctx, maxBatch: 2, precision });
      try {
        const host = await gpu.embed(pixels, n, { tokens: true });
        const bytes = await gpu.embedRgb(rgb, n, { tokens: true });
        assert.deepEqual(bytes.embeddings, host.embeddings, `${precision} embeddings`);
        assert.deepEqual(bytes.tokens, host.tokens, `${precision} tokens`);
        assert.ok(minRowCosine(bytes.embeddings, want.embeddings, model.config.dim) >= 0.999);
        assert.deepEqual((await gpu.embedRgb(rgb, n)).embeddings, host.embeddings);
      } finally {
        await gpu.close();
      }
    }
    await ort.close();
  });

  // Attention as two batched GEMMs + softmax (the short-sequence path; on lavapipe through the
  // portable GEMM): same bound against ORT, batches split over two forwards, register tokens and
  // patch 14 (seq 5 + 49 = 54, not a multiple of 8: padded score rows).
  it('attention as GEMMs (attention: gemm) agrees with ORT', async () => {
    const model = BUILTIN_MODELS['untrained-vit-tiny-p14-reg4']!;
    const loc = await writeVitModel(`${tmp.dir}/gemm-attention`, model.config, randomVitWeights(model.config, model.seed), {
      name: 'gemm-attention', mean: model.mean, std: model.std, mpp: model.mpp, trained: false,
    });
    const ort = await OrtEncoder.create(loc, { threads: 1 });
    const gpu = await WebGpuVitEncoder.create(loc, { context: ctx, maxBatch: 2, attention: 'gemm' });
    try {
      assert.match(gpu.describe(), /gemm-attention/);
      const size = model.config.inputSize, n = 3;
      const pixels = randomPixels(n, size, 7);
      const want = await ort.embed(pixels, n, { tokens: true });
      const got = await gpu.embed(pixels, n, { tokens: true });
      const d = model.config.dim;
      assert.ok(minRowCosine(got.embeddings, want.embeddings, d) >= 0.999);
      assert.ok(minRowCosine(got.tokens!, want.tokens!, d) >= 0.999);
    } finally {
      await gpu.close();
      await ort.close();
    }
  });
});
