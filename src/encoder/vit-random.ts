/**
 * Fixed-seed weights for the built-in UNTRAINED encoders. Only integer arithmetic and products
 * of exactly representable values feed the weights (xorshift128+ → uniform), and every value is
 * rounded to binary16, so the same seed gives the same bytes on any machine, and f16 storage of
 * the ONNX file loses nothing against the float32 reference.
 */
import { roundToFloat16 } from './float16.ts';
import { type Tensor, type VitConfig, type VitWeights, vitParameterShapes } from './vit-config.ts';

/** SplitMix32-seeded xorshift32 stream of uniforms in [0, 1) with 2^-32 resolution. */
export class SeededRandom {
  private state: number;
  constructor(seed: number) {
    // SplitMix-style scramble so seeds 0, 1, 2 … give unrelated streams.
    let z = (seed + 0x9e3779b9) | 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    this.state = (z ^ (z >>> 16)) || 0x6d2b79f5;
  }
  /** Next uniform in [0, 1). */
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x;
    return (x >>> 0) / 4294967296;
  }
  /** Fills `out` with uniforms of mean `mean` and standard deviation `std`. */
  fillUniform(out: Float32Array, std: number, mean = 0): Float32Array {
    const a = std * Math.sqrt(3);
    for (let i = 0; i < out.length; i++) out[i] = mean + (2 * this.next() - 1) * a;
    return out;
  }
}

/**
 * Random ViT weights in timm names. Linear and patch-embedding weights have std 1/√fan_in (the
 * scale of PyTorch's default init), so features keep their variance through depth and the
 * untrained network is a useful random feature map; biases, tokens and position embeddings are
 * small (std 0.02, timm's trunc-normal scale); norms are near 1; layer-scale gammas lie in [0.05, 0.15].
 * Parameters are drawn in `vitParameterShapes` order, one stream per seed.
 */
export function randomVitWeights(config: VitConfig, seed: number): VitWeights {
  const rng = new SeededRandom(seed);
  const weights: VitWeights = new Map();
  for (const [name, shape] of vitParameterShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const fanIn = shape.length >= 2 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    if (name.endsWith('.gamma')) rng.fillUniform(data, 0.05 / Math.sqrt(3), 0.1);
    else if (/norm\d?\.weight$/.test(name)) rng.fillUniform(data, 0.05, 1);
    else if (name.endsWith('.weight')) rng.fillUniform(data, 1 / Math.sqrt(fanIn));
    else rng.fillUniform(data, 0.02);
    const t: Tensor = { shape, data: roundToFloat16(data) };
    weights.set(name, t);
  }
  return weights;
}
