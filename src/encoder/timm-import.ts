/**
 * timm ViT weights (safetensors) → a Lamina model folder. The shape is read from the tensors
 * (width, depth, patch size, MLP width, register tokens, layer scale, position grid); the head
 * count is not in the weights and comes from `--arch` or the usual head width of 64.
 */
import { basename } from 'node:path';
import { InvalidParameterError, UnprocessableError } from '../errors.ts';
import type { ModelLocation } from './manifest.ts';
import { writeVitModel } from './model-store.ts';
import { detectNaming, toTimmNames } from './hf-names.ts';
import { readSafetensors } from './safetensors.ts';
import { checkVitWeights, type Tensor, type VitConfig, type VitWeights } from './vit-config.ts';

/** Architectures `--arch` names: width and heads of timm's models. */
export const VIT_ARCHES: Readonly<Record<string, { dim: number; numHeads: number }>> = {
  'vit-tiny': { dim: 192, numHeads: 3 },
  'vit-small': { dim: 384, numHeads: 6 },
  'vit-base': { dim: 768, numHeads: 12 },
  'vit-large': { dim: 1024, numHeads: 16 },
  'vit-huge': { dim: 1280, numHeads: 16 },
  'vit-giant': { dim: 1536, numHeads: 24 },
};

/** Overrides for {@link inferVitConfig}. */
export interface InferVitOptions {
  /** 'auto' or a key of VIT_ARCHES. @defaultValue 'auto' */
  arch?: string;
  numHeads?: number;
  /** Input size to run at; a different position grid is resized bilinearly. @defaultValue the trained grid × patch */
  inputSize?: number;
  /** Whether pos_embed covers class/register tokens; inferred from its length when left out. */
  posEmbedIncludesPrefix?: boolean;
  /** @defaultValue 1e-6 (timm ViT) */
  layerNormEps?: number;
}

/** Strips a prefix every tensor shares (`module.`, `model.`, `backbone.`, `trunk.`, `vit.`, `dinov2.`), from wrappers. */
export function stripWrapperPrefix(tensors: Map<string, Tensor>): Map<string, Tensor> {
  for (const prefix of ['module.', 'model.', 'backbone.', 'trunk.', 'vit.', 'dinov2.']) {
    const names = [...tensors.keys()];
    if (names.length && names.every((n) => n.startsWith(prefix))) {
      return stripWrapperPrefix(new Map(names.map((n) => [n.slice(prefix.length), tensors.get(n)!])));
    }
  }
  return tensors;
}

/**
 * Infers a ViT config from timm-named weights; resizes `pos_embed` in `weights` when
 * `options.inputSize` asks for another grid.
 * @throws UnprocessableError when the weights are not a plain timm ViT; InvalidParameterError for a wrong `arch`.
 */
export function inferVitConfig(weights: VitWeights, options: InferVitOptions = {}, source = 'weights'): VitConfig {
  const need = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new UnprocessableError(`${source}: no tensor '${name}': not a timm ViT state dict (expected timm names such as cls_token, pos_embed, blocks.0.attn.qkv.weight)`);
    return t;
  };
  const proj = need('patch_embed.proj.weight');
  const [dim, channels, ph, pw] = proj.shape as [number, number, number, number];
  if (proj.shape.length !== 4 || channels !== 3 || ph !== pw) throw new UnprocessableError(`${source}: patch_embed.proj.weight has shape [${proj.shape}], expected [D, 3, P, P]`);
  need('cls_token');
  let depth = 0;
  while (weights.has(`blocks.${depth}.norm1.weight`)) depth++;
  if (depth === 0) throw new UnprocessableError(`${source}: no transformer blocks (blocks.0.norm1.weight)`);
  const mlpHidden = need('blocks.0.mlp.fc1.weight').shape[0]!;
  // timm's SwiGLUPacked keeps the fc1/fc2 names but packs two projections into fc1.
  if (weights.get('blocks.0.mlp.fc2.weight')?.shape[1] === mlpHidden / 2) {
    throw new UnprocessableError(`${source}: the MLP is gated (SwiGLU: fc1 is twice fc2's input width), as in Virchow, Prov-GigaPath and UNI2; ` +
      'import supports GELU MLPs only — export that model to ONNX instead (README, "Bring your own encoder")');
  }
  const numRegisterTokens = weights.get('reg_token')?.shape[1] ?? 0;
  const prefix = 1 + numRegisterTokens;
  const posLen = need('pos_embed').shape[1]!;
  const isSquare = (v: number) => v > 0 && Number.isInteger(Math.sqrt(v));
  // Ambiguous lengths (both squares) follow timm's defaults: class token in pos_embed, registers not.
  let includes = options.posEmbedIncludesPrefix;
  if (includes === undefined) {
    const withPrefix = isSquare(posLen - prefix), without = isSquare(posLen);
    if (!withPrefix && !without) throw new UnprocessableError(`${source}: pos_embed length ${posLen} is not a square grid with or without ${prefix} prefix token(s)`);
    includes = withPrefix && without ? numRegisterTokens === 0 : withPrefix;
  }
  const grid = Math.sqrt(posLen - (includes ? prefix : 0));
  if (!Number.isInteger(grid)) throw new UnprocessableError(`${source}: pos_embed length ${posLen} does not fit posEmbedIncludesPrefix=${includes}`);

  const arch = options.arch ?? 'auto';
  let numHeads = options.numHeads;
  if (arch !== 'auto') {
    const a = VIT_ARCHES[arch];
    if (!a) throw new InvalidParameterError(`unknown --arch '${arch}'; expected auto or one of ${Object.keys(VIT_ARCHES).join(', ')}`);
    if (a.dim !== dim) throw new UnprocessableError(`${source}: --arch ${arch} has width ${a.dim}, but the weights have width ${dim}`);
    numHeads ??= a.numHeads;
  }
  numHeads ??= Object.values(VIT_ARCHES).find((a) => a.dim === dim)?.numHeads ?? (dim % 64 === 0 ? dim / 64 : undefined);
  if (!numHeads || dim % numHeads !== 0) throw new UnprocessableError(`${source}: cannot tell the number of heads for width ${dim}; pass --heads`);

  const inputSize = options.inputSize ?? grid * pw;
  if (inputSize % pw !== 0) throw new InvalidParameterError(`input size ${inputSize} is not a multiple of the patch size ${pw}`);
  if (inputSize / pw !== grid) {
    weights.set('pos_embed', resizePosEmbed(weights.get('pos_embed')!, includes ? prefix : 0, grid, inputSize / pw));
  }
  const config: VitConfig = {
    inputSize, patchSize: pw, dim, depth, numHeads, mlpHidden, numRegisterTokens,
    layerScale: weights.has('blocks.0.ls1.gamma'), qkvBias: weights.has('blocks.0.attn.qkv.bias'),
    posEmbedIncludesPrefix: includes, layerNormEps: options.layerNormEps ?? 1e-6,
  };
  checkVitWeights(weights, config, source);
  return config;
}

/** Bilinear (half-pixel centres, as align_corners=False) resize of the patch part of pos_embed. */
export function resizePosEmbed(pos: Tensor, prefixRows: number, from: number, to: number): Tensor {
  const d = pos.shape[2]!;
  const out = new Float32Array((prefixRows + to * to) * d);
  out.set(pos.data.subarray(0, prefixRows * d));
  const src = (y: number, x: number) => (prefixRows + y * from + x) * d;
  const coord = (i: number) => Math.min(Math.max((i + 0.5) * (from / to) - 0.5, 0), from - 1);
  for (let oy = 0; oy < to; oy++) {
    const fy = coord(oy), y0 = Math.floor(fy), y1 = Math.min(y0 + 1, from - 1), wy = fy - y0;
    for (let ox = 0; ox < to; ox++) {
      const fx = coord(ox), x0 = Math.floor(fx), x1 = Math.min(x0 + 1, from - 1), wx = fx - x0;
      const o = (prefixRows + oy * to + ox) * d;
      for (let c = 0; c < d; c++) {
        out[o + c] = (1 - wy) * ((1 - wx) * pos.data[src(y0, x0) + c]! + wx * pos.data[src(y0, x1) + c]!)
          + wy * ((1 - wx) * pos.data[src(y1, x0) + c]! + wx * pos.data[src(y1, x1) + c]!);
      }
    }
  }
  return { shape: [1, prefixRows + to * to, d], data: out };
}

/** Options of {@link importTimmVit}. */
export interface ImportTimmOptions extends InferVitOptions {
  name?: string;
  /** @defaultValue the file's `lamina.mean` metadata, else ImageNet mean [0.485, 0.456, 0.406] */
  mean?: [number, number, number];
  /** @defaultValue the file's `lamina.std` metadata, else ImageNet std [0.229, 0.224, 0.225] */
  std?: [number, number, number];
  /** @defaultValue the file's `lamina.mpp` metadata, else 0.5 */
  mpp?: number;
  /** @defaultValue true, unless the file's metadata says `lamina.trained: false` */
  trained?: boolean;
  weightType?: 'float32' | 'float16';
  license?: string;
  notes?: string;
  /** The manifest's one line for users (see `modelManifestSchema.summary`). */
  summary?: string;
}

/**
 * Converts a timm ViT safetensors file into a model folder at `outDir`.
 * @example await importTimmVit('uni.safetensors', 'models/uni', { arch: 'vit-large', mpp: 0.5 });
 */
export async function importTimmVit(safetensorsPath: string, outDir: string, options: ImportTimmOptions = {}): Promise<ModelLocation> {
  const { tensors, metadata } = await readSafetensors(safetensorsPath);
  const stripped = stripWrapperPrefix(tensors);
  const naming = detectNaming(stripped);
  const weights = toTimmNames(stripped, safetensorsPath);
  // HF ViT (Phikon) uses LayerNorm eps 1e-12; timm and HF DINOv2 use 1e-6.
  const layerNormEps = options.layerNormEps ?? (naming === 'hf-vit' ? 1e-12 : 1e-6);
  const config = inferVitConfig(weights, { ...options, layerNormEps }, safetensorsPath);
  for (const name of [...weights.keys()]) if (!name.startsWith('blocks.') && /^(head|fc_norm|head_drop|attn_pool|mask_token)/.test(name)) weights.delete(name);
  const trained = options.trained ?? metadata['lamina.trained'] !== 'false';
  // `lamina model export` records how the model is fed; explicit options win.
  const metaTriple = (key: string) => {
    const v = metadata[key]?.split(',').map(Number);
    return v?.length === 3 && v.every(Number.isFinite) ? (v as [number, number, number]) : undefined;
  };
  const metaMpp = Number(metadata['lamina.mpp']);
  const summary = options.summary ?? metadata['lamina.summary'];
  return writeVitModel(outDir, config, weights, {
    name: options.name ?? metadata['lamina.name'] ?? basename(safetensorsPath).replace(/\.safetensors$/i, ''),
    mean: options.mean ?? metaTriple('lamina.mean') ?? [0.485, 0.456, 0.406],
    std: options.std ?? metaTriple('lamina.std') ?? [0.229, 0.224, 0.225],
    mpp: options.mpp ?? (metaMpp > 0 ? metaMpp : 0.5),
    trained,
    license: options.license ?? metadata['lamina.license'],
    ...(summary ? { summary } : {}),
    notes: options.notes ?? `imported from ${basename(safetensorsPath)} (${naming === 'timm' ? 'timm' : `Hugging Face ${naming.slice(3)}`} ViT names)${trained ? '' : '; UNTRAINED weights'}`,
  }, options.weightType ?? 'float32');
}
