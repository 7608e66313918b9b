import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS } from '../../src/encoder/builtin-models.ts';
import { detectNaming, toTimmNames } from '../../src/encoder/hf-names.ts';
import { buildBuiltinModel } from '../../src/encoder/model-store.ts';
import { OrtEncoder } from '../../src/encoder/ort-encoder.ts';
import { writeSafetensors } from '../../src/encoder/safetensors.ts';
import { importTimmVit } from '../../src/encoder/timm-import.ts';
import type { Tensor, VitWeights } from '../../src/encoder/vit-config.ts';
import { randomVitWeights, SeededRandom } from '../../src/encoder/vit-random.ts';
import { minRowCosine, randomPixels, tempDir } from './helpers.ts';

/**
 * Writes timm weights the way transformers names them (ViTModel, or Dinov2WithRegisters when
 * there are registers: the class token's position inside position_embeddings, registers outside).
 */
function toHfNames(w: VitWeights, depth: number, dinov2: boolean): Map<string, Tensor> {
  const hf = new Map<string, Tensor>();
  const d = w.get('cls_token')!.shape[2]!;
  const cls = w.get('cls_token')!;
  if (dinov2) {
    // Split the class token into (token - r) and a position row r: the sum is what the network sees.
    const r = new SeededRandom(3).fillUniform(new Float32Array(d), 0.1);
    const pos = w.get('pos_embed')!;
    const withCls = new Float32Array(pos.data.length + d);
    withCls.set(r, 0);
    withCls.set(pos.data, d);
    hf.set('embeddings.cls_token', { shape: cls.shape, data: cls.data.map((v, i) => v - r[i]!) });
    hf.set('embeddings.position_embeddings', { shape: [1, pos.shape[1]! + 1, d], data: withCls });
    hf.set('embeddings.register_tokens', w.get('reg_token')!);
    hf.set('embeddings.mask_token', { shape: [1, d], data: new Float32Array(d) });
  } else {
    hf.set('embeddings.cls_token', cls);
    hf.set('embeddings.position_embeddings', w.get('pos_embed')!);
  }
  hf.set('embeddings.patch_embeddings.projection.weight', w.get('patch_embed.proj.weight')!);
  hf.set('embeddings.patch_embeddings.projection.bias', w.get('patch_embed.proj.bias')!);
  for (let b = 0; b < depth; b++) {
    const t = (n: string) => w.get(`blocks.${b}.${n}`)!;
    const h = `encoder.layer.${b}.`;
    const qkvW = t('attn.qkv.weight'), qkvB = t('attn.qkv.bias');
    ['query', 'key', 'value'].forEach((kind, i) => {
      hf.set(`${h}attention.attention.${kind}.weight`, { shape: [d, d], data: qkvW.data.slice(i * d * d, (i + 1) * d * d) });
      hf.set(`${h}attention.attention.${kind}.bias`, { shape: [d], data: qkvB.data.slice(i * d, (i + 1) * d) });
    });
    hf.set(`${h}attention.output.dense.weight`, t('attn.proj.weight'));
    hf.set(`${h}attention.output.dense.bias`, t('attn.proj.bias'));
    for (const p of ['weight', 'bias']) {
      hf.set(`${h}${dinov2 ? 'norm1' : 'layernorm_before'}.${p}`, t(`norm1.${p}`));
      hf.set(`${h}${dinov2 ? 'norm2' : 'layernorm_after'}.${p}`, t(`norm2.${p}`));
      hf.set(`${h}${dinov2 ? 'mlp.fc1' : 'intermediate.dense'}.${p}`, t(`mlp.fc1.${p}`));
      hf.set(`${h}${dinov2 ? 'mlp.fc2' : 'output.dense'}.${p}`, t(`mlp.fc2.${p}`));
    }
    if (dinov2) {
      hf.set(`${h}layer_scale1.lambda1`, t('ls1.gamma'));
      hf.set(`${h}layer_scale2.lambda1`, t('ls2.gamma'));
    }
  }
  hf.set('layernorm.weight', w.get('norm.weight')!);
  hf.set('layernorm.bias', w.get('norm.bias')!);
  return hf;
}

describe('Hugging Face ViT / DINOv2 names', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => { tmp = await tempDir(); });
  after(async () => { await tmp.cleanup(); });

  for (const [name, dinov2] of [['untrained-test-tiny', false], ['untrained-vit-tiny-p14-reg4', true]] as const) {
    it(`imports ${dinov2 ? 'Dinov2WithRegisters' : 'ViTModel (Phikon)'} names to the same embeddings (${name})`, async () => {
      const model = BUILTIN_MODELS[name]!;
      const weights = randomVitWeights(model.config, model.seed);
      const hf = toHfNames(weights, model.config.depth, dinov2);
      assert.equal(detectNaming(hf), dinov2 ? 'hf-dinov2' : 'hf-vit');
      await writeSafetensors(`${tmp.dir}/${name}.safetensors`, new Map([...hf].map(([k, v]) => [dinov2 ? k : `vit.${k}`, v])));
      const imported = await importTimmVit(`${tmp.dir}/${name}.safetensors`, `${tmp.dir}/${name}-hf`,
        { numHeads: model.config.numHeads, mean: model.mean, std: model.std, trained: false });
      assert.match(imported.manifest.notes!, new RegExp(`Hugging Face ${dinov2 ? 'dinov2' : 'vit'} ViT names`));
      const original = await buildBuiltinModel(name, `${tmp.dir}/${name}-builtin`);
      const [a, b] = await Promise.all([OrtEncoder.create(imported, { threads: 1 }), OrtEncoder.create(original, { threads: 1 })]);
      try {
        const pixels = randomPixels(2, model.config.inputSize, 4);
        const [ea, eb] = [await a.embed(pixels, 2, { tokens: true }), await b.embed(pixels, 2, { tokens: true })];
        // Only float32 rounding (the folded class token, LayerNorm eps 1e-12 vs 1e-6) differs.
        assert.ok(minRowCosine(ea.embeddings, eb.embeddings, model.config.dim) > 0.99999);
        assert.ok(minRowCosine(ea.tokens!, eb.tokens!, model.config.dim) > 0.99999);
      } finally {
        await a.close();
        await b.close();
      }
    });
  }

  it('names a tensor it cannot map', () => {
    const hf = toHfNames(randomVitWeights(BUILTIN_MODELS['untrained-test-tiny']!.config, 1), 2, false);
    hf.set('encoder.layer.0.mlp.weights_in.weight', { shape: [1], data: new Float32Array(1) });
    assert.throws(() => toTimmNames(hf, 'x'), /x: tensor 'encoder.layer.0.mlp.weights_in.weight' has no timm ViT counterpart/);
  });
});
