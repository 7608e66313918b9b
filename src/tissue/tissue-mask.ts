/**
 * Tissue mask from a low-resolution pyramid level. The level is read in strips (never whole), each
 * strip box-averaged into a mask grid of at most `maxSide` pixels a side; then Otsu on HSV
 * saturation (clamped to a sane band, since an all-tissue or all-glass slide has no valley), an
 * optical-density floor against white glass, and morphological clean-up.
 */
import type { Slide } from '../readers/types.ts';
import { CancelledError, UnprocessableError } from '../errors.ts';
import { otsuThreshold } from './otsu.ts';
import { close, open, removeSmallComponents } from './morphology.ts';

/** A 0/1 tissue grid over the whole slide with its scale. */
export interface TissueMask {
  /** Grid size in mask pixels. */
  width: number;
  height: number;
  /** Level-0 pixels per mask pixel (the same in x and y). */
  downsample: number;
  /** 1 = tissue, row-major `width * height`. */
  data: Uint8Array;
  /** Pyramid level the mask was computed from. */
  levelIndex: number;
  /** Thresholds used: saturation in 0..1, mean optical density per channel. */
  thresholds: { saturation: number; opticalDensity: number };
  /** Fraction of mask pixels that are tissue. */
  tissueFraction: number;
}

/** Mask options. */
export interface TissueMaskOptions {
  /** Longest side of the mask grid. @defaultValue 2048 */
  maxSide?: number;
  /** Lower and upper clamp of the Otsu saturation threshold. @defaultValue [0.04, 0.15] */
  saturationBand?: [number, number];
  /** Minimum mean optical density (log10) for tissue; white glass is ~0.0–0.03. @defaultValue 0.04 */
  minOpticalDensity?: number;
  signal?: AbortSignal;
}

/** Bytes of level pixels read per strip: bounds memory whatever the slide size. */
const STRIP_BYTES = 24 << 20;

/**
 * Computes the tissue mask of a slide.
 * @throws UnprocessableError when no tissue is found.
 * @example const mask = await computeTissueMask(slide, { maxSide: 1024 });
 */
export async function computeTissueMask(slide: Slide, options: TissueMaskOptions = {}): Promise<TissueMask> {
  const maxSide = options.maxSide ?? 2048;
  const [satLow, satHigh] = options.saturationBand ?? [0.04, 0.15];
  const minOd = options.minOpticalDensity ?? 0.04;
  const { width: w0, height: h0 } = slide.dimensions;
  const downsample = Math.max(1, Math.ceil(Math.max(w0, h0) / maxSide));
  const width = Math.max(1, Math.ceil(w0 / downsample));
  const height = Math.max(1, Math.ceil(h0 / downsample));

  // The coarsest level that is still at least as fine as the mask grid.
  let levelIndex = 0;
  slide.levels.forEach((level, i) => {
    if (level.downsample <= downsample * 1.001 && level.downsample >= slide.levels[levelIndex]!.downsample) levelIndex = i;
  });
  const level = slide.levels[levelIndex]!;
  const levelDs = w0 / level.width; // the x ratio: strips map level x to level-0 x exactly

  const sumR = new Float32Array(width * height);
  const sumG = new Float32Array(width * height);
  const sumB = new Float32Array(width * height);
  const count = new Float32Array(width * height);
  const tileH = Math.max(1, level.tileHeight || 256);
  const stripRows = Math.max(1, Math.floor(STRIP_BYTES / (3 * level.width) / tileH)) * tileH;
  const maskXOf = new Int32Array(level.width);
  for (let x = 0; x < level.width; x++) maskXOf[x] = Math.min(width - 1, Math.floor((x * levelDs) / downsample));

  for (let y = 0; y < level.height; y += stripRows) {
    if (options.signal?.aborted) throw new CancelledError('tissue mask cancelled');
    const rows = Math.min(stripRows, level.height - y);
    const image = await slide.readRegion(0, Math.round(y * levelDs), levelIndex, level.width, rows, { signal: options.signal, cache: false }); // one pass: keep no tiles
    const data = image.data;
    for (let r = 0; r < rows; r++) {
      const maskRow = Math.min(height - 1, Math.floor(((y + r) * levelDs) / downsample)) * width;
      let p = r * image.width * 3;
      for (let x = 0; x < image.width; x++, p += 3) {
        const m = maskRow + maskXOf[x]!;
        sumR[m]! += data[p]!;
        sumG[m]! += data[p + 1]!;
        sumB[m]! += data[p + 2]!;
        count[m]! += 1;
      }
    }
  }

  const saturation = new Float32Array(width * height);
  const density = new Float32Array(width * height);
  const histogram = new Float64Array(256);
  for (let i = 0; i < saturation.length; i++) {
    const n = count[i]! || 1;
    const r = count[i] ? sumR[i]! / n : 255;
    const g = count[i] ? sumG[i]! / n : 255;
    const b = count[i] ? sumB[i]! / n : 255;
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    saturation[i] = max > 0 ? (max - min) / max : 0;
    density[i] = (opticalDensity(r) + opticalDensity(g) + opticalDensity(b)) / 3;
    histogram[Math.min(255, Math.floor(saturation[i]! * 256))]! += 1;
  }
  const otsu = otsuThreshold(histogram) / 256;
  const satThreshold = Math.min(satHigh, Math.max(satLow, otsu));

  let mask: Uint8Array = new Uint8Array(width * height);
  for (let i = 0; i < mask.length; i++) mask[i] = saturation[i]! >= satThreshold && density[i]! >= minOd ? 1 : 0;
  mask = close(mask, width, height, 2);
  mask = open(mask, width, height, 1);
  // Specks below ~0.01% of the grid (and at least 4 px) are dust, not tissue.
  mask = removeSmallComponents(mask, width, height, Math.max(4, Math.round((width * height) / 10_000)));

  let tissue = 0;
  for (let i = 0; i < mask.length; i++) tissue += mask[i]!;
  if (tissue === 0) {
    throw new UnprocessableError(
      `${slide.name}: no tissue found (saturation threshold ${satThreshold.toFixed(3)}, optical density floor ${minOd}; mask ${width}x${height} from level ${levelIndex})`,
    );
  }
  return {
    width,
    height,
    downsample,
    data: mask,
    levelIndex,
    thresholds: { saturation: round6(satThreshold), opticalDensity: minOd },
    tissueFraction: tissue / mask.length,
  };
}

function opticalDensity(value: number): number {
  return -Math.log10((value + 1) / 256);
}

function round6(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

/**
 * Summed-area table of a mask for O(1) tissue fractions of level-0 rectangles.
 * @example const f = tissueFractionLookup(mask); f(0, 0, 224, 224)
 */
export function tissueFractionLookup(mask: TissueMask): (level0X: number, level0Y: number, width: number, height: number) => number {
  const { width, height, downsample } = mask;
  const stride = width + 1;
  const sat = new Float64Array(stride * (height + 1));
  for (let y = 0; y < height; y++) {
    let rowSum = 0;
    for (let x = 0; x < width; x++) {
      rowSum += mask.data[y * width + x]!;
      sat[(y + 1) * stride + x + 1] = sat[y * stride + x + 1]! + rowSum;
    }
  }
  return (level0X, level0Y, w, h) => {
    // Mask pixels whose centres fall inside the rectangle; at least the pixel under its centre.
    let x0 = Math.round(level0X / downsample);
    let x1 = Math.round((level0X + w) / downsample);
    let y0 = Math.round(level0Y / downsample);
    let y1 = Math.round((level0Y + h) / downsample);
    if (x1 <= x0) { x0 = Math.floor((level0X + w / 2) / downsample); x1 = x0 + 1; }
    if (y1 <= y0) { y0 = Math.floor((level0Y + h / 2) / downsample); y1 = y0 + 1; }
    x0 = Math.max(0, Math.min(width, x0)); x1 = Math.max(0, Math.min(width, x1));
    y0 = Math.max(0, Math.min(height, y0)); y1 = Math.max(0, Math.min(height, y1));
    const area = (x1 - x0) * (y1 - y0);
    if (area <= 0) return 0;
    const sum = sat[y1 * stride + x1]! - sat[y0 * stride + x1]! - sat[y1 * stride + x0]! + sat[y0 * stride + x0]!;
    return sum / area;
  };
}
