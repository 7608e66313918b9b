/**
 * Opens the encoder named by the analysis parameters as a `TileEmbedder`: a built-in model name or
 * a model path (resolved by src/encoder's `resolveModel`), run by `OrtEncoder` on the requested
 * execution provider, fed by `preprocessTiles` (sharp resize to the model's input, mean/std).
 */
import type { RgbImage } from '../readers/types.ts';
import { resolveModel } from '../encoder/model-store.ts';
import { OrtEncoder } from '../encoder/ort-encoder.ts';
import { createEncoder } from '../encoder/create-encoder.ts';
import { normalizeInto, preprocessTiles } from '../encoder/preprocess.ts';
import type { Encoder } from '../encoder/types.ts';
import type { TileEmbedder } from './embedder.ts';
import { UnprocessableError } from '../errors.ts';

/**
 * Opens a model for tile embedding.
 * @throws NotFoundError for an unknown model, UnprocessableError for a file that is not ONNX or
 *   does not match its manifest, DeviceError when the engine is not available.
 * @example const embedder = await openEmbedder('untrained-test-tiny', 'cpu');
 */
export async function openEmbedder(model: string, engine: 'cpu' | 'webgpu' | 'cuda', threads = 0): Promise<TileEmbedder> {
  const location = await resolveModel(model);
  // 'webgpu' is Lamina's own WebGPU ViT engine (CPU fallback with a warning when no adapter exists).
  const encoder = engine === 'webgpu'
    ? await createEncoder(location, { engine: 'webgpu', threads })
    : await OrtEncoder.create(location, { device: engine, threads });
  return encoderEmbedder(encoder);
}

/** Wraps an `Encoder`: tiles are resized to the model's input size and normalised. */
export function encoderEmbedder(encoder: Encoder): TileEmbedder {
  const m = encoder.manifest;
  return {
    model: { name: m.name, trained: m.trained, embeddingSize: m.embeddingDim, inputSize: m.inputSize, mpp: m.mpp ?? null, ...(m.summary ? { summary: m.summary } : {}) },
    device: encoder.device,
    async embed(tiles: RgbImage[], signal?: AbortSignal): Promise<Float32Array> {
      const rgb = encoder.embedRgb && asInputBytes(tiles, m.inputSize);
      if (rgb) return (await encoder.embedRgb!(rgb, tiles.length, { signal })).embeddings;
      const pixels = await preprocessTiles(tiles, m);
      const { embeddings } = await encoder.embed(pixels, tiles.length, { signal });
      return embeddings;
    },
    ...(m.outputs.tokens ? {
      async embedTokens(tiles: RgbImage[], signal?: AbortSignal) {
        const t0 = performance.now();
        const rgb = encoder.embedRgb && asInputBytes(tiles, m.inputSize);
        const pixels = rgb ? undefined : await preprocessTiles(tiles, m);
        const preprocess = performance.now() - t0;
        const r = rgb ? await encoder.embedRgb!(rgb, tiles.length, { signal, tokens: true }) : await encoder.embed(pixels!, tiles.length, { signal, tokens: true });
        if (!r.tokens || !r.tokenGrid) throw new UnprocessableError(`encoder '${m.name}' gave no patch tokens`);
        return { embeddings: r.embeddings, tokens: r.tokens, tokensPerTile: r.tokenGrid[0] * r.tokenGrid[1], timings: { preprocess, ...r.timings } };
      },
    } : {}),
    ...(encoder.embedRegion && m.outputs.tokens ? {
      async embedRegions(regions: RgbImage[], signal?: AbortSignal) {
        const size = regions[0]?.width ?? 0, len = 3 * size * size;
        const pixels = new Float32Array(regions.length * len);
        regions.forEach((r, i) => {
          if (r.width !== size || r.height !== size) throw new UnprocessableError(`regions must be ${size}x${size}; got ${r.width}x${r.height}`);
          normalizeInto(r.data, size, m.mean, m.std, pixels, i * len);
        });
        const r = await encoder.embedRegion!(pixels, regions.length, size, { signal, tokens: true });
        if (!r.tokens) throw new UnprocessableError(`encoder '${m.name}' gave no patch tokens`);
        return { tokens: r.tokens, grid: size / m.patchSize };
      },
    } : {}),
    close: () => encoder.close(),
  };
}

/**
 * The tiles' bytes end to end when every tile is already `size` × `size` RGB (nothing to resize),
 * for engines that normalise bytes themselves; else null (the sharp path).
 */
function asInputBytes(tiles: RgbImage[], size: number): Uint8Array | null {
  const len = size * size * 3;
  if (!tiles.every((t) => t.width === size && t.height === size && t.data.length === len)) return null;
  const out = new Uint8Array(tiles.length * len);
  tiles.forEach((t, i) => out.set(t.data, i * len));
  return out;
}
