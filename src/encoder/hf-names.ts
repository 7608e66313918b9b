/**
 * Hugging Face `transformers` ViT and DINOv2 state dicts (Phikon = ViTModel, Phikon-v2 = Dinov2Model)
 * renamed to timm's ViT names, so they import like timm checkpoints. HF keeps query, key and
 * value as three Linear layers; timm packs them as one `qkv` in q|k|v order.
 */
import { UnprocessableError } from '../errors.ts';
import type { Tensor } from './vit-config.ts';

/** Which naming a state dict uses; `hf-vit` has LayerNorm eps 1e-12, `hf-dinov2` 1e-6. */
export type WeightNaming = 'timm' | 'hf-vit' | 'hf-dinov2';

/** Detects the naming from the tensor names (after wrapper prefixes are stripped). */
export function detectNaming(tensors: ReadonlyMap<string, Tensor>): WeightNaming {
  if (tensors.has('embeddings.cls_token')) {
    return tensors.has('encoder.layer.0.layernorm_before.weight') ? 'hf-vit' : 'hf-dinov2';
  }
  return 'timm';
}

const LAYER_RULES: Array<[RegExp, string]> = [
  [/^(layernorm_before|norm1)\.(weight|bias)$/, 'norm1.$2'],
  [/^(layernorm_after|norm2)\.(weight|bias)$/, 'norm2.$2'],
  [/^attention\.output\.dense\.(weight|bias)$/, 'attn.proj.$1'],
  [/^(intermediate\.dense|mlp\.fc1)\.(weight|bias)$/, 'mlp.fc1.$2'],
  [/^(output\.dense|mlp\.fc2)\.(weight|bias)$/, 'mlp.fc2.$2'],
  [/^layer_scale1\.lambda1$/, 'ls1.gamma'],
  [/^layer_scale2\.lambda1$/, 'ls2.gamma'],
];

/**
 * Renames an HF ViT/DINOv2 state dict to timm names; timm dicts are returned unchanged.
 * @throws UnprocessableError naming a tensor with no timm counterpart (e.g. a SwiGLU `weights_in`).
 */
export function toTimmNames(tensors: ReadonlyMap<string, Tensor>, source = 'weights'): Map<string, Tensor> {
  if (detectNaming(tensors) === 'timm') return new Map(tensors);
  const out = new Map<string, Tensor>();
  const qkv = new Map<string, Partial<Record<'query' | 'key' | 'value', { weight?: Tensor; bias?: Tensor }>>>();
  for (const [name, t] of tensors) {
    if (/^(pooler\.|embeddings\.mask_token$|classifier\.)/.test(name)) continue;
    if (name === 'embeddings.cls_token') { out.set('cls_token', t); continue; }
    if (name === 'embeddings.position_embeddings') { out.set('pos_embed', t); continue; }
    if (name === 'embeddings.register_tokens') { out.set('reg_token', t); continue; }
    const proj = /^embeddings\.patch_embeddings\.projection\.(weight|bias)$/.exec(name);
    if (proj) { out.set(`patch_embed.proj.${proj[1]}`, t); continue; }
    const final = /^layernorm\.(weight|bias)$/.exec(name);
    if (final) { out.set(`norm.${final[1]}`, t); continue; }
    const layer = /^encoder\.layer\.(\d+)\.(.+)$/.exec(name);
    if (layer) {
      const [, index, rest] = layer as unknown as [string, string, string];
      const attn = /^attention\.attention\.(query|key|value)\.(weight|bias)$/.exec(rest);
      if (attn) {
        const parts = qkv.get(index) ?? {};
        (parts[attn[1] as 'query'] ??= {})[attn[2] as 'weight'] = t;
        qkv.set(index, parts);
        continue;
      }
      const rule = LAYER_RULES.find(([re]) => re.test(rest));
      if (rule) { out.set(`blocks.${index}.${rest.replace(rule[0], rule[1])}`, t); continue; }
    }
    throw new UnprocessableError(`${source}: tensor '${name}' has no timm ViT counterpart (Hugging Face ViT/DINOv2 names are mapped; other variants are not)`);
  }
  for (const [index, parts] of qkv) {
    for (const kind of ['weight', 'bias'] as const) {
      const pieces = [parts.query?.[kind], parts.key?.[kind], parts.value?.[kind]];
      if (pieces.every((p) => p === undefined)) continue;
      if (pieces.some((p) => p === undefined)) throw new UnprocessableError(`${source}: layer ${index} lacks one of query/key/value ${kind}`);
      const [q, k, v] = pieces as [Tensor, Tensor, Tensor];
      const data = new Float32Array(q.data.length * 3);
      data.set(q.data, 0);
      data.set(k.data, q.data.length);
      data.set(v.data, 2 * q.data.length);
      out.set(`blocks.${index}.attn.qkv.${kind}`, { shape: [q.shape[0]! * 3, ...q.shape.slice(1)], data });
    }
  }
  // HF puts the class token's position in position_embeddings but not the registers' (DINOv2 with
  // registers). timm cannot say "class token only", so fold that row into the class token itself
  // (cls + pos₀ is what the network sees either way) and keep the patch rows: no_embed_class layout.
  const reg = out.get('reg_token'), pos = out.get('pos_embed'), cls = out.get('cls_token');
  if (reg && pos && cls) {
    const d = cls.data.length;
    const folded = new Float32Array(cls.data);
    for (let i = 0; i < d; i++) folded[i]! += pos.data[i]!;
    out.set('cls_token', { shape: cls.shape, data: folded });
    out.set('pos_embed', { shape: [1, pos.shape[1]! - 1, d], data: pos.data.slice(d) });
  }
  return out;
}
