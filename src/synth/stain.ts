/**
 * Colour models for synthetic H&E: a Beer–Lambert mix of two stains (optical density adds, so a
 * pixel is `I = I0 · 10^-(h·H + e·E + glass)`), and the CIE Lab statistics used to stain-match a
 * real tissue patch to its new surroundings (Reinhard et al. 2001 colour transfer).
 */

/**
 * Optical density per unit concentration (log10, R, G, B). Tuned so that e ≈ 0.3 gives the pink of
 * stroma and h ≈ 0.8 the blue-purple of nuclei in the TCGA lung tile of ../shared/slides.
 */
export const HEMATOXYLIN_OD = [0.55, 0.68, 0.35] as const;
export const EOSIN_OD = [0.1, 0.75, 0.4] as const;
/** OD of bare glass: background pixels come out as 247 grey, as on a scanned slide. */
export const GLASS_OD = 0.015;

/** Concentration range covered by the lookup table; larger values saturate. */
export const H_MAX = 2.4;
export const E_MAX = 1.6;
export const H_STEPS = 256;
export const E_STEPS = 128;

/** RGB of bare glass. */
export const GLASS_RGB = Math.round(255 * 10 ** -GLASS_OD);

/**
 * RGB for every quantised (h, e) pair: index `(hIndex * E_STEPS + eIndex) * 3`. A table keeps the
 * per-pixel cost to one lookup instead of three `Math.pow` calls.
 */
export function buildStainLut(): Uint8Array {
  const lut = new Uint8Array(H_STEPS * E_STEPS * 3);
  for (let hi = 0; hi < H_STEPS; hi++) {
    const h = (hi / (H_STEPS - 1)) * H_MAX;
    for (let ei = 0; ei < E_STEPS; ei++) {
      const e = (ei / (E_STEPS - 1)) * E_MAX;
      const p = (hi * E_STEPS + ei) * 3;
      for (let c = 0; c < 3; c++) {
        const od = h * HEMATOXYLIN_OD[c] + e * EOSIN_OD[c] + GLASS_OD;
        lut[p + c] = Math.round(255 * 10 ** -od);
      }
    }
  }
  return lut;
}

/**
 * Per-step attenuation for an extra layer of hematoxylin laid over existing RGB pixels
 * (`out = in · 10^(-h·H)`), as 8.8 fixed point: index `hIndex * 3 + channel`.
 */
export function buildHematoxylinOverlay(): Uint16Array {
  const t = new Uint16Array(H_STEPS * 3);
  for (let hi = 0; hi < H_STEPS; hi++) {
    const h = (hi / (H_STEPS - 1)) * H_MAX;
    for (let c = 0; c < 3; c++) t[hi * 3 + c] = Math.round(256 * 10 ** -(h * HEMATOXYLIN_OD[c]));
  }
  return t;
}

/** Mean and standard deviation per Lab channel. */
export interface LabStats { mean: [number, number, number]; std: [number, number, number] }

/** sRGB byte → linear light, tabulated (the conversion runs on millions of patch pixels). */
const SRGB_TO_LINEAR = Float64Array.from({ length: 256 }, (_, v) => {
  const c = v / 255;
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
});
/** Linear light → sRGB byte, tabulated at 1/8192 steps: finer than one 8-bit step everywhere but near black, where it rounds to ±1. */
const LINEAR_STEPS = 8192;
const LINEAR_TO_SRGB = Uint8Array.from({ length: LINEAR_STEPS + 1 }, (_, i) => {
  const c = i / LINEAR_STEPS;
  const v = c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055;
  return Math.round(v * 255);
});
function linearToSrgb(c: number): number {
  if (c <= 0) return 0;
  if (c >= 1) return 255;
  return LINEAR_TO_SRGB[(c * LINEAR_STEPS + 0.5) | 0];
}
const EPS = 216 / 24389, KAPPA = 24389 / 27;
const fLab = (t: number) => (t > EPS ? Math.cbrt(t) : (t * KAPPA + 16) / 116);
const fInv = (t: number) => { const t3 = t * t * t; return t3 > EPS ? t3 : (116 * t - 16) / KAPPA; };

/** sRGB (0–255) to CIE Lab (D65). */
export function rgbToLab(r: number, g: number, b: number, out: Float64Array | number[]): void {
  const R = SRGB_TO_LINEAR[r], G = SRGB_TO_LINEAR[g], B = SRGB_TO_LINEAR[b];
  const x = (0.4124564 * R + 0.3575761 * G + 0.1804375 * B) / 0.95047;
  const y = 0.2126729 * R + 0.7151522 * G + 0.072175 * B;
  const z = (0.0193339 * R + 0.119192 * G + 0.9503041 * B) / 1.08883;
  const fx = fLab(x), fy = fLab(y), fz = fLab(z);
  out[0] = 116 * fy - 16;
  out[1] = 500 * (fx - fy);
  out[2] = 200 * (fy - fz);
}

/** CIE Lab (D65) to sRGB (0–255, clamped). */
export function labToRgb(L: number, a: number, b: number, out: Uint8Array, at: number): void {
  const fy = (L + 16) / 116;
  const x = fInv(fy + a / 500) * 0.95047;
  const y = fInv(fy);
  const z = fInv(fy - b / 200) * 1.08883;
  out[at] = linearToSrgb(3.2404542 * x - 1.5371385 * y - 0.4985314 * z);
  out[at + 1] = linearToSrgb(-0.969266 * x + 1.8760108 * y + 0.041556 * z);
  out[at + 2] = linearToSrgb(0.0556434 * x - 0.2040259 * y + 1.0572252 * z);
}

/** True for pixels that are tissue rather than glass (not near-white, some chroma). */
export function isTissuePixel(r: number, g: number, b: number): boolean {
  const max = Math.max(r, g, b), min = Math.min(r, g, b);
  return max < 235 || max - min > 25;
}

/** Lab mean/std over the tissue pixels of an RGB image. */
export function labStats(rgb: Uint8Array): LabStats {
  const lab = new Float64Array(3);
  const s = [0, 0, 0], s2 = [0, 0, 0];
  let n = 0;
  for (let p = 0; p < rgb.length; p += 3) {
    if (!isTissuePixel(rgb[p], rgb[p + 1], rgb[p + 2])) continue;
    rgbToLab(rgb[p], rgb[p + 1], rgb[p + 2], lab);
    for (let c = 0; c < 3; c++) { s[c] += lab[c]; s2[c] += lab[c] * lab[c]; }
    n++;
  }
  if (n === 0) return { mean: [100, 0, 0], std: [1, 1, 1] };
  const mean = s.map((v) => v / n) as [number, number, number];
  const std = s2.map((v, c) => Math.sqrt(Math.max(1e-6, v / n - mean[c] * mean[c]))) as [number, number, number];
  return { mean, std };
}

/**
 * Reinhard colour transfer: shifts and scales each Lab channel of the tissue pixels of `rgb` so
 * their mean and std equal `target`; glass pixels are left as they are. A second pass corrects
 * what sRGB clipping and pixels crossing the tissue/glass line moved. Returns a new image.
 */
export function matchStain(rgb: Uint8Array, target: LabStats): Uint8Array {
  return transferOnce(transferOnce(rgb, target), target);
}

function transferOnce(rgb: Uint8Array, target: LabStats): Uint8Array {
  const source = labStats(rgb);
  const out = new Uint8Array(rgb);
  const lab = new Float64Array(3);
  const k = [0, 1, 2].map((c) => target.std[c] / source.std[c]);
  for (let p = 0; p < rgb.length; p += 3) {
    if (!isTissuePixel(rgb[p], rgb[p + 1], rgb[p + 2])) continue;
    rgbToLab(rgb[p], rgb[p + 1], rgb[p + 2], lab);
    labToRgb(
      (lab[0] - source.mean[0]) * k[0] + target.mean[0],
      (lab[1] - source.mean[1]) * k[1] + target.mean[1],
      (lab[2] - source.mean[2]) * k[2] + target.mean[2],
      out, p,
    );
  }
  return out;
}
