/**
 * ViT shapes and weights under timm's names (`cls_token`, `pos_embed`, `patch_embed.proj.*`,
 * `blocks.N.{norm1,attn.qkv,attn.proj,ls1,norm2,mlp.fc1,mlp.fc2,ls2}.*`, `norm.*`, `reg_token`), the
 * one weight naming every part of Lamina uses (ONNX generator, TypeScript reference, safetensors).
 */
import { UnprocessableError } from '../errors.ts';

/** A float32 tensor, row-major. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Weights by timm parameter name. */
export type VitWeights = Map<string, Tensor>;

/** Shape of a pre-norm ViT with class token (timm `VisionTransformer`). */
export interface VitConfig {
  inputSize: number;
  patchSize: number;
  /** Embedding width D. */
  dim: number;
  depth: number;
  numHeads: number;
  /** MLP hidden width (timm: dim × mlp_ratio). */
  mlpHidden: number;
  /** Register tokens after the class token (timm `reg_tokens`). @defaultValue 0 */
  numRegisterTokens: number;
  /** Blocks scale their branches by `ls1.gamma`/`ls2.gamma` (timm `init_values`). */
  layerScale: boolean;
  /** The attention QKV projection has a bias. */
  qkvBias: boolean;
  /**
   * True when `pos_embed` also covers the class/register tokens (timm default); false for
   * `no_embed_class=True` models (DINOv2-style), whose `pos_embed` covers patch tokens only.
   */
  posEmbedIncludesPrefix: boolean;
  /** LayerNorm epsilon (timm ViT: 1e-6). */
  layerNormEps: number;
}

/** Number of patch tokens. */
export function patchTokenCount(c: VitConfig): number {
  return (c.inputSize / c.patchSize) ** 2;
}

/** Expected shape of every parameter, by timm name, for a config. */
export function vitParameterShapes(c: VitConfig): Map<string, number[]> {
  const d = c.dim;
  const n = patchTokenCount(c);
  const prefix = 1 + c.numRegisterTokens;
  const shapes = new Map<string, number[]>([
    ['cls_token', [1, 1, d]],
    ['pos_embed', [1, n + (c.posEmbedIncludesPrefix ? prefix : 0), d]],
    ['patch_embed.proj.weight', [d, 3, c.patchSize, c.patchSize]],
    ['patch_embed.proj.bias', [d]],
  ]);
  if (c.numRegisterTokens > 0) shapes.set('reg_token', [1, c.numRegisterTokens, d]);
  for (let b = 0; b < c.depth; b++) {
    const p = `blocks.${b}.`;
    shapes.set(`${p}norm1.weight`, [d]).set(`${p}norm1.bias`, [d]);
    shapes.set(`${p}attn.qkv.weight`, [3 * d, d]);
    if (c.qkvBias) shapes.set(`${p}attn.qkv.bias`, [3 * d]);
    shapes.set(`${p}attn.proj.weight`, [d, d]).set(`${p}attn.proj.bias`, [d]);
    if (c.layerScale) shapes.set(`${p}ls1.gamma`, [d]).set(`${p}ls2.gamma`, [d]);
    shapes.set(`${p}norm2.weight`, [d]).set(`${p}norm2.bias`, [d]);
    shapes.set(`${p}mlp.fc1.weight`, [c.mlpHidden, d]).set(`${p}mlp.fc1.bias`, [c.mlpHidden]);
    shapes.set(`${p}mlp.fc2.weight`, [d, c.mlpHidden]).set(`${p}mlp.fc2.bias`, [d]);
  }
  shapes.set('norm.weight', [d]).set('norm.bias', [d]);
  return shapes;
}

/** Parameters a plain ViT feature extractor does not use (classifier heads, pooling norms). */
const IGNORED = /^(head\.|head_drop|fc_norm\.|attn_pool\.|mask_token$)/;

/**
 * Checks that `weights` hold exactly the parameters `config` needs, with the right shapes.
 * @throws UnprocessableError naming the first missing, unexpected or misshapen tensor.
 */
export function checkVitWeights(weights: VitWeights, config: VitConfig, source = 'weights'): void {
  const shapes = vitParameterShapes(config);
  for (const [name, shape] of shapes) {
    const t = weights.get(name);
    if (!t) throw new UnprocessableError(`${source}: missing tensor '${name}' (expected shape [${shape}])`);
    if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
      throw new UnprocessableError(`${source}: tensor '${name}' has shape [${t.shape}], expected [${shape}]`);
    }
    if (t.data.length !== shape.reduce((a, b) => a * b, 1)) {
      throw new UnprocessableError(`${source}: tensor '${name}' holds ${t.data.length} values for shape [${shape}]`);
    }
  }
  for (const name of weights.keys()) {
    if (!shapes.has(name) && !IGNORED.test(name)) {
      throw new UnprocessableError(`${source}: unsupported tensor '${name}' for a plain timm ViT ` +
        `(q/k norm, SwiGLU, relative position bias and similar variants are not supported)`);
    }
  }
}
