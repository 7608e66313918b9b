import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { RgbImage } from '../../src/readers/types.ts';

/** Shared helpers of the NDPI and DICOM reader tests (not a test file itself). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const slidesDir = join(repoRoot, '..', 'shared', 'slides');
export const fixturesDir = join(repoRoot, 'test', 'fixtures');

export interface RegionCase { level: number; x: number; y: number; width: number; height: number; png: string }

export function loadCases<T = { cases: RegionCase[] }>(format: 'ndpi' | 'dicom'): T {
  return JSON.parse(readFileSync(join(fixturesDir, format, 'cases.json'), 'utf8')) as T;
}

/** Mean absolute difference per channel between an image and a reference PNG of the same size. */
export async function meanAbsDiff(img: RgbImage, png: string): Promise<number[]> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.width !== img.width || info.height !== img.height) {
    throw new Error(`size ${img.width} × ${img.height} differs from the reference ${info.width} × ${info.height}`);
  }
  const sums = [0, 0, 0];
  for (let i = 0; i < data.length; i++) sums[i % 3]! += Math.abs(data[i]! - img.data[i]!);
  return sums.map((s) => s / (img.width * img.height));
}

/** Copies a sub-rectangle of an RGB image. */
export function cropRgb(img: RgbImage, x: number, y: number, w: number, h: number): RgbImage {
  const data = Buffer.alloc(w * h * 3);
  for (let r = 0; r < h; r++) img.data.copy(data, r * w * 3, ((y + r) * img.width + x) * 3, ((y + r) * img.width + x + w) * 3);
  return { width: w, height: h, data };
}
