/**
 * Writes a timm-style ViT as ONNX: Conv patch embedding, class and register tokens, position
 * embeddings, pre-norm blocks (LayerNormalization, opset 17), attention as ONNX Runtime's fused
 * `com.microsoft.MultiHeadAttention` (its flash-attention path), exact (erf) `com.microsoft.Gelu`,
 * optional layer scale and a final LayerNorm. Input `pixels` [B,3,H,W]; outputs `embedding` [B,D]
 * (class token after the final norm) and `tokens` [B,N,D] (patch tokens, row-major grid).
 *
 * With `dynamicSize`, H and W may be any multiple of the patch size (native-resolution regions,
 * issue 7): the trained position grid is resized inside the graph by an ONNX `Resize` to the
 * input's patch grid — cubic with a = −0.75 and half-pixel centres (or linear), edge-clamped, the
 * same table kernels/vit-tokens/pos-embed.ts gives the WebGPU engine.
 */
import { UnprocessableError } from '../errors.ts';
import { GraphBuilder } from './onnx-graph.ts';
import { checkVitWeights, patchTokenCount, type VitConfig, type VitWeights } from './vit-config.ts';

/** Tensor names of the generated graph; a manifest for it uses these. */
export const VIT_ONNX_NAMES = { input: 'pixels', embedding: 'embedding', tokens: 'tokens' } as const;

export interface BuildVitOnnxOptions {
  /** Initializer storage; float16 halves the file, compute stays float32. @defaultValue 'float32' */
  weightType?: 'float32' | 'float16';
  /** Model name written into the ONNX metadata. */
  name?: string;
  /** Extra ONNX metadata_props (e.g. `lamina.trained`). */
  metadata?: Record<string, string>;
  /**
   * 'fused': one com.microsoft MultiHeadAttention per block (ORT's flash-attention path);
   * 'unfused': standard-opset MatMul/Softmax/MatMul, for runtimes without the contrib op and as a
   * benchmark peer. @defaultValue 'fused'
   */
  attention?: 'fused' | 'unfused';
  /**
   * Accept any input size that is a multiple of the patch size (H and W symbolic), resizing the
   * position grid in the graph. @defaultValue false (fixed `inputSize`, the position table as trained)
   */
  dynamicSize?: boolean;
  /** Position-grid resize of a dynamic-size graph, as the WebGPU engine's option. @defaultValue 'bicubic' */
  posInterpolation?: 'bicubic' | 'bilinear';
}

/**
 * Builds the ONNX bytes for `weights` (timm names, checked against `config`).
 * @example const bytes = buildVitOnnx(config, randomVitWeights(config, 0), { weightType: 'float16' });
 */
export function buildVitOnnx(config: VitConfig, weights: VitWeights, options: BuildVitOnnxOptions = {}): Uint8Array {
  checkVitWeights(weights, config);
  const storage = options.weightType ?? 'float32';
  // A protobuf message is capped at 2 GiB; we write no external-data files.
  let params = 0;
  for (const t of weights.values()) params += t.data.length;
  const bytes = params * (storage === 'float16' ? 2 : 4);
  if (bytes > 2 ** 31 - 2 ** 24) {
    throw new UnprocessableError(`${params} parameters as ${storage} need ${(bytes / 2 ** 30).toFixed(2)} GiB, over ONNX's 2 GiB single-file limit` +
      (storage === 'float32' ? '; write float16 weights (--f16)' : ''));
  }
  const g = new GraphBuilder();
  const { dim: d, patchSize: p, inputSize: s } = config;
  const n = patchTokenCount(config);
  const prefix = 1 + config.numRegisterTokens;
  const w = (name: string) => {
    const t = weights.get(name)!;
    return g.floatInit(name, t.shape, t.data, storage);
  };
  // timm Linear weights are [out, in]; MatMul wants [in, out].
  const linearT = (name: string) => {
    const t = weights.get(name)!;
    const [out, inp] = t.shape as [number, number];
    const tr = new Float32Array(t.data.length);
    for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) tr[i * out + o] = t.data[o * inp + i]!;
    return g.floatInit(`${name}.T`, [inp, out], tr, storage);
  };
  const linear = (x: string, base: string, hasBias = true) => {
    const y = g.op('MatMul', [x, linearT(`${base}.weight`)], {}, { name: `${base}.matmul` });
    return hasBias ? g.op('Add', [y, w(`${base}.bias`)], {}, { name: `${base}.add` }) : y;
  };
  const layerNorm = (x: string, base: string) =>
    g.op('LayerNormalization', [x, w(`${base}.weight`), w(`${base}.bias`)], { axis: -1, epsilon: { float: config.layerNormEps } }, { name: base });

  const dynamic = options.dynamicSize === true;
  const pixels = g.input(VIT_ONNX_NAMES.input, dynamic ? ['batch', 3, 'height', 'width'] : ['batch', 3, s, s]);
  // Patch embedding: [B,D,h,w] → [B,D,N] → [B,N,D].
  const conv = g.op('Conv', [pixels, w('patch_embed.proj.weight'), w('patch_embed.proj.bias')],
    { kernel_shape: [p, p], strides: [p, p] }, { name: 'patch_embed.proj' });
  const flat = g.op('Reshape', [conv, g.int64Init('shape_bdn', [0, d, -1])]);
  let patches = g.op('Transpose', [flat], { perm: [0, 2, 1] });
  const pos = dynamic ? resizedPosEmbed(g, config, weights.get('pos_embed')!.data, conv, storage, options.posInterpolation ?? 'bicubic') : w('pos_embed');
  if (!config.posEmbedIncludesPrefix) patches = g.op('Add', [patches, pos], {}, { name: 'pos_embed.add' });
  // Prefix tokens broadcast to the batch: Expand to [B, k, D].
  const batch = g.op('Shape', [pixels], { start: 0, end: 1 });
  const expand = (param: string, count: number) =>
    g.op('Expand', [w(param), g.op('Concat', [batch, g.int64Init(`${param}.tail`, [count, d])], { axis: 0 })], {}, { name: `${param}.expand` });
  const parts = [expand('cls_token', 1)];
  if (config.numRegisterTokens > 0) parts.push(expand('reg_token', config.numRegisterTokens));
  let x = g.op('Concat', [...parts, patches], { axis: 1 }, { name: 'tokens.concat' });
  if (config.posEmbedIncludesPrefix) x = g.op('Add', [x, pos], {}, { name: 'pos_embed.add' });

  const split = g.int64Init('qkv_split', [d, d, d]);
  for (let b = 0; b < config.depth; b++) {
    const pre = `blocks.${b}`;
    const h1 = layerNorm(x, `${pre}.norm1`);
    const qkv = linear(h1, `${pre}.attn.qkv`, config.qkvBias);
    const q = `${pre}.q`, k = `${pre}.k`, v = `${pre}.v`;
    g.op('Split', [qkv, split], { axis: -1 }, { name: `${pre}.attn.split`, outputs: [q, k, v] });
    const att = options.attention === 'unfused'
      ? unfusedAttention(g, q, k, v, config, pre)
      : g.op('MultiHeadAttention', [q, k, v], { num_heads: config.numHeads }, { domain: 'com.microsoft', name: `${pre}.attn.mha` });
    let a = linear(att, `${pre}.attn.proj`);
    if (config.layerScale) a = g.op('Mul', [a, w(`${pre}.ls1.gamma`)], {}, { name: `${pre}.ls1` });
    x = g.op('Add', [x, a], {}, { name: `${pre}.residual1` });
    const h2 = layerNorm(x, `${pre}.norm2`);
    const f1 = linear(h2, `${pre}.mlp.fc1`);
    const act = g.op('Gelu', [f1], {}, { domain: 'com.microsoft', name: `${pre}.mlp.gelu` });
    let m = linear(act, `${pre}.mlp.fc2`);
    if (config.layerScale) m = g.op('Mul', [m, w(`${pre}.ls2.gamma`)], {}, { name: `${pre}.ls2` });
    x = g.op('Add', [x, m], {}, { name: `${pre}.residual2` });
  }
  const normed = layerNorm(x, 'norm');
  g.op('Gather', [normed, g.int64Init('cls_index', [0])], { axis: 1 }, { output: 'cls_gathered' });
  g.op('Squeeze', ['cls_gathered', g.int64Init('axis1', [1])], {}, { output: VIT_ONNX_NAMES.embedding });
  // Slice clamps an end past the sequence, so one end serves every grid size.
  g.op('Slice', [normed, g.int64Init('tok_start', [prefix]), g.int64Init('tok_end', [dynamic ? Number.MAX_SAFE_INTEGER : prefix + n]), g.int64Init('tok_axis', [1])],
    {}, { output: VIT_ONNX_NAMES.tokens });
  g.output(VIT_ONNX_NAMES.embedding, ['batch', d]);
  g.output(VIT_ONNX_NAMES.tokens, ['batch', dynamic ? 'tokens' : n, d]);
  return g.encode(options.name ?? 'vit', {
    'lamina.architecture': 'vit', 'lamina.vitConfig': JSON.stringify(config), ...(options.name ? { 'lamina.name': options.name } : {}), ...options.metadata,
  });
}


/**
 * The position table for the input's patch grid: the trained [from², D] grid stored as an NCHW
 * image [1, D, from, from], resized by `Resize` to the conv output's [h, w], flattened back to
 * [1, h·w, D]; prefix rows (when pos_embed includes them) are concatenated in front unchanged.
 */
function resizedPosEmbed(g: GraphBuilder, c: VitConfig, pos: Float32Array, conv: string, storage: 'float32' | 'float16', mode: 'bicubic' | 'bilinear'): string {
  const d = c.dim, prefix = 1 + c.numRegisterTokens, prefixRows = c.posEmbedIncludesPrefix ? prefix : 0;
  const from = c.inputSize / c.patchSize;
  const nchw = new Float32Array(d * from * from);
  for (let t = 0; t < from * from; t++) for (let ch = 0; ch < d; ch++) nchw[ch * from * from + t] = pos[(prefixRows + t) * d + ch]!;
  const grid = g.floatInit('pos_embed.grid_nchw', [1, d, from, from], nchw, storage);
  // Target [1, D, h, w] = [1] ++ shape(conv)[1:4].
  const convShape = g.op('Shape', [conv], { start: 1, end: 4 });
  const sizes = g.op('Concat', [g.int64Init('pos_embed.one', [1]), convShape], { axis: 0 });
  const resized = g.op('Resize', [grid, '', '', sizes], mode === 'bicubic'
    ? { mode: 'cubic', cubic_coeff_a: { float: -0.75 }, coordinate_transformation_mode: 'half_pixel', exclude_outside: 0 }
    : { mode: 'linear', coordinate_transformation_mode: 'half_pixel' }, { name: 'pos_embed.resize' });
  const flat = g.op('Reshape', [resized, g.int64Init('pos_embed.shape_1dn', [1, d, -1])]);
  const table = g.op('Transpose', [flat], { perm: [0, 2, 1] }, { name: 'pos_embed.grid' });
  if (!prefixRows) return table;
  const head = g.floatInit('pos_embed.prefix', [1, prefixRows, d], pos.slice(0, prefixRows * d), storage);
  return g.op('Concat', [head, table], { axis: 1 }, { name: 'pos_embed.table' });
}

/** softmax(q·kᵀ/√d_head)·v in standard ops: [B,S,D] → [B,H,S,hd] per head and back. */
function unfusedAttention(g: GraphBuilder, q: string, k: string, v: string, c: VitConfig, pre: string): string {
  const hd = c.dim / c.numHeads;
  const heads = g.int64Init(`${pre}.attn.heads_shape`, [0, 0, c.numHeads, hd]);
  const split = (x: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [x, heads])], { perm });
  const qh = split(q, [0, 2, 1, 3]);
  const kt = split(k, [0, 2, 3, 1]);
  const vh = split(v, [0, 2, 1, 3]);
  const scale = g.floatInit(`${pre}.attn.scale`, [], new Float32Array([1 / Math.sqrt(hd)]), 'float32');
  const scores = g.op('Mul', [g.op('MatMul', [qh, kt]), scale]);
  const out = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), vh]);
  return g.op('Reshape', [g.op('Transpose', [out], { perm: [0, 2, 1, 3] }), g.int64Init(`${pre}.attn.merge_shape`, [0, 0, c.dim])]);
}
