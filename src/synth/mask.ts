/**
 * The true anomaly mask: one 8-bit grey pixel (255 = anomaly, 0 = normal or glass) per
 * `downsample` × `downsample` block of level-0 pixels, set when the block's centre lies inside an
 * anomaly — the same inside test the renderer uses. Plus a JSON sidecar that lists each anomaly.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import sharp from 'sharp';
import { type Anomaly, isInside } from './anomalies.ts';

/** Longest side of the mask the automatic downsample aims for. */
const MASK_TARGET_SIDE = 4096;

/**
 * The smallest power of two ≥ 8 that keeps the mask's longer side ≤ 4096 px
 * (8 for a 20k slide, 32 for 100k: a 9.8 MB raster, a few KB as PNG).
 */
export function autoMaskDownsample(width: number, height: number): number {
  let d = 8;
  while (Math.ceil(Math.max(width, height) / d) > MASK_TARGET_SIDE) d *= 2;
  return d;
}

export interface MaskRaster { width: number; height: number; downsample: number; data: Uint8Array }

/** Rasterises the anomalies at `downsample`. */
export function rasterizeMask(anomalies: readonly Anomaly[], width: number, height: number, downsample: number): MaskRaster {
  const mw = Math.ceil(width / downsample), mh = Math.ceil(height / downsample);
  const data = new Uint8Array(mw * mh);
  for (const a of anomalies) {
    const i0 = Math.max(0, Math.floor(a.x / downsample)), i1 = Math.min(mw - 1, Math.floor((a.x + a.width) / downsample));
    const j0 = Math.max(0, Math.floor(a.y / downsample)), j1 = Math.min(mh - 1, Math.floor((a.y + a.height) / downsample));
    for (let j = j0; j <= j1; j++) {
      for (let i = i0; i <= i1; i++) {
        if (isInside(a, (i + 0.5) * downsample, (j + 0.5) * downsample)) data[j * mw + i] = 255;
      }
    }
  }
  return { width: mw, height: mh, downsample, data };
}

/** Writes the mask as a 1-channel PNG. */
export async function writeMaskPng(path: string, mask: MaskRaster): Promise<void> {
  await sharp(mask.data, { raw: { width: mask.width, height: mask.height, channels: 1 } })
    .toColourspace('b-w') // else libvips writes a 1-band image as RGB
    .png({ compressionLevel: 9 })
    .toFile(path);
}

/** Contents of the `.anomalies.json` sidecar. */
export interface SynthSidecar {
  format: 'lamina-synth-anomalies/1';
  slide: string;
  mask: string;
  width: number;
  height: number;
  mpp: number;
  seed: number;
  background: 'procedural' | 'real';
  /** Level-0 px per mask pixel. */
  maskDownsample: number;
  maskWidth: number;
  maskHeight: number;
  /** Files of ../shared the real-tissue parts came from. */
  realSources: string[];
  anomalies: Anomaly[];
}

export function writeSidecar(path: string, sidecar: SynthSidecar): void {
  writeFileSync(path, `${JSON.stringify(sidecar, null, 2)}\n`);
}

/**
 * Loads a slide's ground truth: the sidecar and its mask raster (1 byte per mask pixel, 0 or 255).
 * A relative `mask` path in the sidecar is taken as written (relative to the working directory
 * at synthesis); if no file is there, beside the sidecar.
 * @example const { sidecar, mask } = await readTruth('slide.anomalies.json');
 */
export async function readTruth(sidecarPath: string): Promise<{ sidecar: SynthSidecar; mask: MaskRaster }> {
  const sidecar = JSON.parse(readFileSync(sidecarPath, 'utf8')) as SynthSidecar;
  if (sidecar.format !== 'lamina-synth-anomalies/1') throw new Error(`${sidecarPath}: not a lamina synth sidecar`);
  const candidates = isAbsolute(sidecar.mask) ? [sidecar.mask] : [resolve(sidecar.mask), resolve(dirname(sidecarPath), sidecar.mask.split(/[\\/]/).pop()!)];
  let lastError: unknown;
  for (const path of candidates) {
    try {
      const { data, info } = await sharp(path).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
      if (info.width !== sidecar.maskWidth || info.height !== sidecar.maskHeight) {
        throw new Error(`${path}: mask is ${info.width}×${info.height}, sidecar says ${sidecar.maskWidth}×${sidecar.maskHeight}`);
      }
      return { sidecar, mask: { width: info.width, height: info.height, downsample: sidecar.maskDownsample, data: new Uint8Array(data.buffer, data.byteOffset, data.length) } };
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}
