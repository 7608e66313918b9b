import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS } from '../../src/encoder/builtin-models.ts';
import { buildBuiltinModel } from '../../src/encoder/model-store.ts';
import { readVitOnnx } from '../../src/encoder/onnx-weights.ts';
import { OrtEncoder } from '../../src/encoder/ort-encoder.ts';
import { writeSafetensors } from '../../src/encoder/safetensors.ts';
import { importTimmVit, inferVitConfig, resizePosEmbed } from '../../src/encoder/timm-import.ts';
import type { VitWeights } from '../../src/encoder/vit-config.ts';
import { randomVitWeights } from '../../src/encoder/vit-random.ts';
import { minRowCosine, randomPixels, tempDir } from './helpers.ts';

describe('importing timm safetensors', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => { tmp = await tempDir(); });
  after(async () => { await tmp.cleanup(); });

  for (const name of ['untrained-test-tiny', 'untrained-vit-tiny-p14-reg4']) {
    it(`gives the same embeddings as the generated ${name} whose weights it imports`, async () => {
      const model = BUILTIN_MODELS[name]!;
      const weights = randomVitWeights(model.config, model.seed);
      // A wrapper prefix and a classifier head, as in a checkpoint saved from a training script.
      const saved: VitWeights = new Map([...weights].map(([k, v]) => [`module.${k}`, v]));
      saved.set('module.head.weight', { shape: [2, model.config.dim], data: new Float32Array(2 * model.config.dim) });
      await writeSafetensors(`${tmp.dir}/${name}.safetensors`, saved, { metadata: { 'lamina.trained': 'false' } });

      const imported = await importTimmVit(`${tmp.dir}/${name}.safetensors`, `${tmp.dir}/${name}-imported`,
        { mean: model.mean, std: model.std, weightType: 'float16', numHeads: model.config.numHeads });
      assert.equal(imported.manifest.trained, false);
      assert.equal(imported.manifest.embeddingDim, model.config.dim);
      assert.equal(imported.manifest.numRegisterTokens, model.config.numRegisterTokens);
      const original = await buildBuiltinModel(name, `${tmp.dir}/${name}-builtin`);
      const a = await OrtEncoder.create(imported, { threads: 1 });
      const b = await OrtEncoder.create(original, { threads: 1 });
      try {
        const pixels = randomPixels(2, model.config.inputSize, 9);
        const ea = await a.embed(pixels, 2, { tokens: true });
        const eb = await b.embed(pixels, 2, { tokens: true });
        // Same float16-exact weights, same graph: equal up to float32 summation order.
        assert.ok(minRowCosine(ea.embeddings, eb.embeddings, model.config.dim) > 0.99999);
        assert.ok(minRowCosine(ea.tokens!, eb.tokens!, model.config.dim) > 0.99999);
      } finally {
        await a.close();
        await b.close();
      }
      // And the ONNX holds the same weights, readable back for other engines.
      const back = await readVitOnnx(imported.onnxPath);
      assert.deepEqual(back.config, model.config);
      assert.deepEqual(back.weights.get('blocks.0.attn.qkv.weight')!.data, weights.get('blocks.0.attn.qkv.weight')!.data);
    });
  }

  it('infers the shape, honours --arch, and resizes the position grid for another input size', () => {
    const model = BUILTIN_MODELS['untrained-vit-tiny-p14-reg4']!;
    const w = randomVitWeights(model.config, 1);
    assert.deepEqual(inferVitConfig(new Map(w), {}), model.config);
    assert.equal(inferVitConfig(new Map(w), { arch: 'vit-tiny' }).numHeads, 3);
    assert.throws(() => inferVitConfig(new Map(w), { arch: 'vit-small' }), /--arch vit-small has width 384, but the weights have width 192/);
    const resized = new Map(w);
    const cfg = inferVitConfig(resized, { inputSize: 140 });
    assert.equal(cfg.inputSize, 140);
    assert.deepEqual(resized.get('pos_embed')!.shape, [1, 100, 192]);
  });

  it('resizes position grids bilinearly, keeping prefix rows and linear ramps', () => {
    // pos[y, x] = 10·y + x on a 4×4 grid plus one prefix row of 99: half-pixel-centre bilinear
    // resampling keeps a linear ramp linear away from the clamped border.
    const from = 4, d = 1;
    const data = new Float32Array(1 + from * from);
    data[0] = 99;
    for (let y = 0; y < from; y++) for (let x = 0; x < from; x++) data[1 + y * from + x] = 10 * y + x;
    const same = resizePosEmbed({ shape: [1, 17, d], data }, 1, from, from);
    assert.deepEqual(same.data, data);
    const up = resizePosEmbed({ shape: [1, 17, d], data }, 1, from, 8);
    assert.deepEqual(up.shape, [1, 65, 1]);
    assert.equal(up.data[0], 99);
    // Output (y=3, x=4) samples source (1.25, 1.75): 10·1.25 + 1.75 = 14.25.
    assert.ok(Math.abs(up.data[1 + 3 * 8 + 4]! - 14.25) < 1e-5);
  });

  it('says what is missing from a file that is not a timm ViT', () => {
    const w = randomVitWeights(BUILTIN_MODELS['untrained-test-tiny']!.config, 1);
    const noCls = new Map(w);
    noCls.delete('cls_token');
    assert.throws(() => inferVitConfig(noCls, {}, 'x.safetensors'), /x.safetensors: no tensor 'cls_token': not a timm ViT state dict/);
    const qkNorm = new Map(w).set('blocks.0.attn.q_norm.weight', { shape: [16], data: new Float32Array(16) });
    assert.throws(() => inferVitConfig(qkNorm, {}, 'x'), /x: unsupported tensor 'blocks.0.attn.q_norm.weight'/);
    const swiglu = new Map(w).set('blocks.0.mlp.fc2.weight', { shape: [64, 128], data: new Float32Array(64 * 128) });
    assert.throws(() => inferVitConfig(swiglu, {}, 'x'), /x: the MLP is gated \(SwiGLU/);
  });
});
