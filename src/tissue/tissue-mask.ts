/**
 * Tissue mask from a low-resolution pyramid level. The level is read in strips (never whole), each
 * strip box-averaged into a mask grid of at most `maxSide` pixels a side; then Otsu on HSV
 * saturation (clamped to a sane band, since an all-tissue or all-glass slide has no valley), an
 * optical-density floor against white glass, and morphological clean-up.
 */
import type { Slide } from '../readers/types.ts';
import { CancelledError, UnprocessableError } from '../errors.ts';
import { otsuThreshold } from './otsu.ts';
import { closeThenOpenInPlace, removeSmallComponents } from './morphology.ts';

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
  /** Bytes of level pixels read at once (rounded to whole tile rows, at least one). @defaultValue 8 MiB */
  stripBytes?: number;
  signal?: AbortSignal;
}

/**
 * Bytes of level pixels read at once (whole tile rows, full level width): bounds memory whatever the
 * slide size. 8 MiB gives 6 MiB strips on both a 2048-px-wide level (two 512-px tile rows) and a
 * 4096-px-wide one (one tile row); a level wider than the cap reads one tile row at a time.
 */
const STRIP_BYTES = 8 << 20;

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

  const strip = options.stripBytes ?? STRIP_BYTES;
  const { mask, satThreshold } = await thresholdedMask(slide, levelIndex, width, height, downsample, minOd, [satLow, satHigh], strip, options.signal);
  return finishMask(slide, mask, { width, height, downsample, levelIndex, satThreshold, minOd });
}

/** The mask before clean-up; the saturation grid is dropped on return, before morphology allocates. */
async function thresholdedMask(
  slide: Slide, levelIndex: number, width: number, height: number, downsample: number, minOd: number,
  [satLow, satHigh]: [number, number], stripBytes: number, signal?: AbortSignal,
) {
  const { saturation, histogram, mask } = await maskFeatures(slide, levelIndex, width, height, downsample, minOd, stripBytes, signal);
  const otsu = otsuThreshold(histogram) / 256;
  const satThreshold = Math.min(satHigh, Math.max(satLow, otsu));
  // `mask` holds the optical-density test; tissue also needs the saturation test.
  for (let i = 0; i < mask.length; i++) mask[i] = mask[i]! && saturation[i]! >= satThreshold ? 1 : 0;
  return { mask, satThreshold };
}

/**
 * Box-averages the level into the mask grid and returns, per mask pixel, the HSV saturation
 * (float32), the optical-density test (0/1, the future mask) and the saturation histogram. Level
 * rows map to mask rows in order, so only one mask row of sums is held: a row is finished as soon
 * as a level row of the next one arrives. The sums are float32 as the per-grid sums were, added in
 * the same order, so the result is bit for bit the same as summing whole grids.
 */
async function maskFeatures(slide: Slide, levelIndex: number, width: number, height: number, downsample: number, minOd: number, stripBytes: number, signal?: AbortSignal) {
  const level = slide.levels[levelIndex]!;
  const levelDs = slide.dimensions.width / level.width; // the x ratio: strips map level x to level-0 x exactly
  const tileH = Math.max(1, level.tileHeight || 256);
  const stripRows = Math.max(1, Math.floor(stripBytes / (3 * level.width) / tileH)) * tileH;
  const maskXOf = new Int32Array(level.width);
  for (let x = 0; x < level.width; x++) maskXOf[x] = Math.min(width - 1, Math.floor((x * levelDs) / downsample));

  const sumR = new Float32Array(width);
  const sumG = new Float32Array(width);
  const sumB = new Float32Array(width);
  const count = new Float32Array(width);
  const saturation = new Float32Array(width * height);
  const mask = new Uint8Array(width * height);
  const histogram = new Float64Array(256);
  let maskRow = 0; // the mask row whose sums are being gathered
  const finishRow = () => {
    const base = maskRow * width;
    for (let x = 0; x < width; x++) {
      const n = count[x]! || 1;
      const r = count[x] ? sumR[x]! / n : 255;
      const g = count[x] ? sumG[x]! / n : 255;
      const b = count[x] ? sumB[x]! / n : 255;
      const max = Math.max(r, g, b);
      const min = Math.min(r, g, b);
      saturation[base + x] = max > 0 ? (max - min) / max : 0;
      // compared as stored in a float32 grid before, so rounded the same way
      mask[base + x] = Math.fround((opticalDensity(r) + opticalDensity(g) + opticalDensity(b)) / 3) >= minOd ? 1 : 0;
      histogram[Math.min(255, Math.floor(saturation[base + x]! * 256))]! += 1;
    }
    sumR.fill(0); sumG.fill(0); sumB.fill(0); count.fill(0);
    maskRow++;
  };

  for (let y = 0; y < level.height; y += stripRows) {
    if (signal?.aborted) throw new CancelledError('tissue mask cancelled');
    const rows = Math.min(stripRows, level.height - y);
    const image = await slide.readRegion(0, Math.round(y * levelDs), levelIndex, level.width, rows, { signal, cache: false }); // one pass: keep no tiles
    const data = image.data;
    for (let r = 0; r < rows; r++) {
      const row = Math.min(height - 1, Math.floor(((y + r) * levelDs) / downsample));
      while (maskRow < row) finishRow();
      let p = r * image.width * 3;
      for (let x = 0; x < image.width; x++, p += 3) {
        const m = maskXOf[x]!;
        sumR[m]! += data[p]!;
        sumG[m]! += data[p + 1]!;
        sumB[m]! += data[p + 2]!;
        count[m]! += 1;
      }
    }
  }
  while (maskRow < height) finishRow(); // the last row, and rows no level row reached (white)
  return { saturation, histogram, mask };
}

/** Morphological clean-up, the tissue fraction, and the refusal of a slide without tissue. */
function finishMask(
  slide: Slide,
  raw: Uint8Array,
  g: { width: number; height: number; downsample: number; levelIndex: number; satThreshold: number; minOd: number },
): TissueMask {
  const { width, height, satThreshold, minOd, levelIndex } = g;
  let mask = closeThenOpenInPlace(raw, width, height, 2, 1);
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
    downsample: g.downsample,
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
  // Counts are integers: 4 bytes a cell while they fit (a 2048² grid: 16 MiB instead of 32).
  const cells = stride * (height + 1);
  const sat = width * height < 2 ** 31 ? new Int32Array(cells) : new Float64Array(cells);
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
