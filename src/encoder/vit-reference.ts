/**
 * A plain TypeScript forward pass of the timm ViT that `buildVitOnnx` writes — written for
 * clarity, not speed (float64 accumulation, no blocking). It is the CPU twin the ONNX graph and
 * the WebGPU engine are checked against. Same conventions as timm: tokens [cls, reg…, patches],
 * pre-norm blocks, exact (erf) GELU, softmax(q·kᵀ/√d_head)·v, LayerNorm over the last axis.
 */
import { patchTokenCount, type VitConfig, type VitWeights } from './vit-config.ts';

/** Result of {@link vitReferenceForward}. */
export interface VitReferenceOutput {
  /** `n × D` class token after the final norm. */
  embeddings: Float32Array;
  /** `n × N × D` patch tokens after the final norm. */
  tokens: Float32Array;
}

/**
 * Runs the ViT on `n` images given as NCHW float32 (`n × 3 × inputSize × inputSize`).
 * @example const { embeddings } = vitReferenceForward(config, weights, pixels, 2);
 */
export function vitReferenceForward(config: VitConfig, weights: VitWeights, pixels: Float32Array, n: number): VitReferenceOutput {
  const d = config.dim;
  const nPatch = patchTokenCount(config);
  const imageLen = 3 * config.inputSize * config.inputSize;
  if (pixels.length < n * imageLen) throw new RangeError(`pixels holds ${pixels.length} values, need ${n * imageLen}`);
  const embeddings = new Float32Array(n * d);
  const tokens = new Float32Array(n * nPatch * d);
  for (let i = 0; i < n; i++) {
    const x = forwardOne(config, weights, pixels.subarray(i * imageLen, (i + 1) * imageLen));
    const prefix = 1 + config.numRegisterTokens;
    embeddings.set(x.subarray(0, d), i * d);
    tokens.set(x.subarray(prefix * d, (prefix + nPatch) * d), i * nPatch * d);
  }
  return { embeddings, tokens };
}

function get(weights: VitWeights, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new Error(`missing weight ${name}`);
  return t.data;
}

function forwardOne(c: VitConfig, weights: VitWeights, image: Float32Array): Float32Array {
  const { dim: d, patchSize: p, inputSize: size } = c;
  const grid = size / p;
  const nPatch = grid * grid;
  const prefix = 1 + c.numRegisterTokens;
  const seq = prefix + nPatch;
  const x = new Float32Array(seq * d);
  const w = (name: string) => get(weights, name);

  // Patch embedding: a stride-p convolution, one dot product per (patch, output channel).
  const pw = w('patch_embed.proj.weight');
  const pb = w('patch_embed.proj.bias');
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const row = (prefix + gy * grid + gx) * d;
      for (let o = 0; o < d; o++) {
        let acc = pb[o]!;
        for (let ch = 0; ch < 3; ch++) {
          for (let ky = 0; ky < p; ky++) {
            const src = ch * size * size + (gy * p + ky) * size + gx * p;
            const wr = ((o * 3 + ch) * p + ky) * p;
            for (let kx = 0; kx < p; kx++) acc += pw[wr + kx]! * image[src + kx]!;
          }
        }
        x[row + o] = acc;
      }
    }
  }
  x.set(w('cls_token').subarray(0, d), 0);
  if (c.numRegisterTokens > 0) x.set(w('reg_token'), d);
  const pos = w('pos_embed');
  const posStart = c.posEmbedIncludesPrefix ? 0 : prefix * d;
  for (let i = 0; i < pos.length; i++) x[posStart + i]! += pos[i]!;

  for (let b = 0; b < c.depth; b++) {
    const pre = `blocks.${b}.`;
    const h1 = layerNorm(x, seq, d, w(`${pre}norm1.weight`), w(`${pre}norm1.bias`), c.layerNormEps);
    const qkv = linear(h1, seq, d, 3 * d, w(`${pre}attn.qkv.weight`), c.qkvBias ? w(`${pre}attn.qkv.bias`) : null);
    const att = attention(qkv, seq, d, c.numHeads);
    const proj = linear(att, seq, d, d, w(`${pre}attn.proj.weight`), w(`${pre}attn.proj.bias`));
    addScaled(x, proj, d, c.layerScale ? w(`${pre}ls1.gamma`) : null);
    const h2 = layerNorm(x, seq, d, w(`${pre}norm2.weight`), w(`${pre}norm2.bias`), c.layerNormEps);
    const f1 = linear(h2, seq, d, c.mlpHidden, w(`${pre}mlp.fc1.weight`), w(`${pre}mlp.fc1.bias`));
    for (let i = 0; i < f1.length; i++) f1[i] = gelu(f1[i]!);
    const f2 = linear(f1, seq, c.mlpHidden, d, w(`${pre}mlp.fc2.weight`), w(`${pre}mlp.fc2.bias`));
    addScaled(x, f2, d, c.layerScale ? w(`${pre}ls2.gamma`) : null);
  }
  return layerNorm(x, seq, d, w('norm.weight'), w('norm.bias'), c.layerNormEps);
}

/** y[s, o] = b[o] + Σ_i x[s, i]·W[o, i] (timm/PyTorch Linear: weight is [out, in]). */
export function linear(x: Float32Array, rows: number, inDim: number, outDim: number, weight: Float32Array, bias: Float32Array | null): Float32Array {
  const y = new Float32Array(rows * outDim);
  for (let s = 0; s < rows; s++) {
    const xr = s * inDim;
    for (let o = 0; o < outDim; o++) {
      let acc = bias ? bias[o]! : 0;
      const wr = o * inDim;
      for (let i = 0; i < inDim; i++) acc += x[xr + i]! * weight[wr + i]!;
      y[s * outDim + o] = acc;
    }
  }
  return y;
}

/** LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm. */
export function layerNorm(x: Float32Array, rows: number, d: number, gamma: Float32Array, beta: Float32Array, eps: number): Float32Array {
  const y = new Float32Array(rows * d);
  for (let s = 0; s < rows; s++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[s * d + i]!;
    mean /= d;
    let variance = 0;
    for (let i = 0; i < d; i++) variance += (x[s * d + i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / d + eps);
    for (let i = 0; i < d; i++) y[s * d + i] = (x[s * d + i]! - mean) * inv * gamma[i]! + beta[i]!;
  }
  return y;
}

/** Multi-head softmax attention over packed [seq, 3·D] q|k|v rows; returns [seq, D]. */
export function attention(qkv: Float32Array, seq: number, d: number, heads: number): Float32Array {
  const hd = d / heads;
  const scale = 1 / Math.sqrt(hd);
  const out = new Float32Array(seq * d);
  const scores = new Float64Array(seq);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < seq; i++) {
      const q = i * 3 * d + h * hd;
      let max = -Infinity;
      for (let j = 0; j < seq; j++) {
        const k = j * 3 * d + d + h * hd;
        let dot = 0;
        for (let t = 0; t < hd; t++) dot += qkv[q + t]! * qkv[k + t]!;
        scores[j] = dot * scale;
        if (scores[j]! > max) max = scores[j]!;
      }
      let sum = 0;
      for (let j = 0; j < seq; j++) sum += (scores[j] = Math.exp(scores[j]! - max));
      for (let t = 0; t < hd; t++) {
        let acc = 0;
        for (let j = 0; j < seq; j++) acc += scores[j]! * qkv[j * 3 * d + 2 * d + h * hd + t]!;
        out[i * d + h * hd + t] = acc / sum;
      }
    }
  }
  return out;
}

function addScaled(x: Float32Array, y: Float32Array, d: number, gamma: Float32Array | null): void {
  for (let i = 0; i < x.length; i++) x[i]! += gamma ? y[i]! * gamma[i % d]! : y[i]!;
}

/** Exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)), as torch.nn.GELU() and com.microsoft.Gelu. */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** erf via the complementary error function's Chebyshev fit (Numerical Recipes erfcc; |rel err| < 1.2e-7). */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}
