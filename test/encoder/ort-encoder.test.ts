import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS } from '../../src/encoder/builtin-models.ts';
import { buildBuiltinModel } from '../../src/encoder/model-store.ts';
import { OrtEncoder } from '../../src/encoder/ort-encoder.ts';
import { vitReferenceForward } from '../../src/encoder/vit-reference.ts';
import { randomVitWeights } from '../../src/encoder/vit-random.ts';
import { minRowCosine, randomPixels, tempDir } from './helpers.ts';

// ORT runs float32 with reordered sums and the fused attention; the reference accumulates in
// float64. Their gap is float32 rounding through a few layers: cosine ≥ 0.9999 per row, and the
// largest absolute difference under 2e-3 on unit-scale LayerNorm outputs.
const MIN_COSINE = 0.9999;
const MAX_ABS = 2e-3;

for (const name of ['untrained-test-tiny', 'untrained-vit-tiny-p14-reg4']) {
  describe(`OrtEncoder on ${name}`, () => {
    const model = BUILTIN_MODELS[name]!;
    let tmp: Awaited<ReturnType<typeof tempDir>>;
    let encoder: OrtEncoder;
    before(async () => {
      tmp = await tempDir();
      const loc = await buildBuiltinModel(name, `${tmp.dir}/${name}`);
      encoder = await OrtEncoder.create(loc, { threads: 1, maxBatch: 2 });
    });
    after(async () => {
      await encoder?.close();
      await tmp?.cleanup();
    });

    it('matches the TypeScript reference forward pass on random inputs', async () => {
      const n = 3; // maxBatch 2 → two runs, so batch splitting is covered too
      const size = model.config.inputSize;
      const pixels = randomPixels(n, size, 42);
      const got = await encoder.embed(pixels, n, { tokens: true });
      const ref = vitReferenceForward(model.config, randomVitWeights(model.config, model.seed), pixels, n);
      const d = model.config.dim;
      assert.equal(got.embeddings.length, n * d);
      assert.ok(minRowCosine(got.embeddings, ref.embeddings, d) >= MIN_COSINE);
      assert.ok(minRowCosine(got.tokens!, ref.tokens, d) >= MIN_COSINE);
      let maxAbs = 0;
      for (let i = 0; i < ref.embeddings.length; i++) maxAbs = Math.max(maxAbs, Math.abs(ref.embeddings[i]! - got.embeddings[i]!));
      assert.ok(maxAbs < MAX_ABS, `max |ort - ref| = ${maxAbs}`);
      const side = size / model.config.patchSize;
      assert.deepEqual(got.tokenGrid, [side, side]);
      // Different tiles give different embeddings (the batch is not collapsed).
      assert.ok(minRowCosine(got.embeddings.subarray(0, d), got.embeddings.subarray(d, 2 * d), d) < 0.999);
    });

    it('omits tokens unless asked and checks the input length', async () => {
      const size = model.config.inputSize;
      const got = await encoder.embed(randomPixels(1, size, 1), 1);
      assert.equal(got.tokens, undefined);
      await assert.rejects(encoder.embed(new Float32Array(10), 1), /Expected 1 × 3 × \d+ × \d+ = \d+ for pixels.length but received 10/);
    });
  });
}

describe('unfused attention graph', () => {
  it('gives the same embeddings as the fused MultiHeadAttention graph', async () => {
    const { buildVitOnnx } = await import('../../src/encoder/onnx-vit-builder.ts');
    const ort = await import('onnxruntime-node');
    const model = BUILTIN_MODELS['untrained-vit-tiny-p14-reg4']!;
    const weights = randomVitWeights(model.config, model.seed);
    const size = model.config.inputSize;
    const pixels = randomPixels(2, size, 3);
    const outs: Float32Array[] = [];
    for (const attention of ['fused', 'unfused'] as const) {
      const session = await ort.InferenceSession.create(buildVitOnnx(model.config, weights, { attention }), { intraOpNumThreads: 1 });
      const r = await session.run({ pixels: new ort.Tensor('float32', pixels, [2, 3, size, size]) });
      outs.push(r.embedding!.data as Float32Array);
      await session.release();
    }
    assert.ok(minRowCosine(outs[0]!, outs[1]!, model.config.dim) >= MIN_COSINE);
  });
});
