/**
 * Native-resolution regions: a level-0 square of R px encoded as ONE sequence of (R/P)² patch
 * tokens by the WebGPU engine (flash attention keeps memory linear in tokens), giving one feature
 * per P-px cell — a heatmap at patch resolution instead of one value per 224-px tile.
 * @example const { features, grid } = await regionFeatures(slide, encoder, 0, 0, 1024);
 */
import { invalidParameter } from '../errors.ts';
import type { Slide } from '../readers/types.ts';
import { normalizeInto } from './normalize.ts';
import type { WebGpuVitEncoder } from './webgpu-vit-encoder.ts';

export interface RegionFeatures {
  /** [grid², D] patch-token features, row-major over the region. */
  features: Float32Array;
  /** Cells per side (R / patch size). */
  grid: number;
}

/** Reads the level-0 region (x, y, size²) and returns its per-patch token features. */
export async function regionFeatures(slide: Slide, encoder: WebGpuVitEncoder, x: number, y: number, size: number): Promise<RegionFeatures> {
  const p = encoder.manifest.patchSize;
  if (!Number.isInteger(size) || size < p || size % p) throw invalidParameter('size', `positive multiple of the patch size ${p}`, size);
  const img = await slide.readRegion(x, y, 0, size, size);
  if (img.width !== size || img.height !== size) throw invalidParameter('region', `${size}×${size} inside the slide`, `${img.width}×${img.height}`);
  const pixels = new Float32Array(3 * size * size);
  normalizeInto(img.data, size, encoder.manifest.mean, encoder.manifest.std, pixels, 0);
  const r = await encoder.embedRegion(pixels, 1, size, { tokens: true });
  return { features: r.tokens!, grid: size / p };
}
