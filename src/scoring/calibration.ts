/**
 * Calibration of raw anomaly scores to 0..1 against a distribution of normal scores (the reference
 * bank's held-out distances, or the slide's own scores): a logistic on the robust z-score,
 * `1 / (1 + exp(-(raw - (median + z·σ)) / σ))` with σ = 1.4826·MAD. A score at the normal median
 * maps to ~0.05 and one `z` robust deviations above it to 0.5. Strictly increasing, so rankings
 * (and AUROC) are those of the raw scores.
 */
import { sortedQuantile } from './linalg.ts';

/** Calibration parameters, stored in banks and result.json. */
export interface Calibration {
  /** Median of the normal scores. */
  center: number;
  /** Robust spread: 1.4826 × median absolute deviation (never 0). */
  spread: number;
  /** Robust z that maps to 0.5. */
  z: number;
}

/**
 * Fits a calibration to normal scores.
 * @example const cal = fitCalibration(scores, 3); calibrate(cal, raw)
 */
export function fitCalibration(scores: ArrayLike<number>, z: number): Calibration {
  const sorted = Float64Array.from(scores).sort();
  const center = sortedQuantile(sorted, 0.5);
  const deviations = sorted.map((s) => Math.abs(s - center)).sort();
  let spread = 1.4826 * sortedQuantile(deviations, 0.5);
  if (!(spread > 0)) {
    // Degenerate (half the scores identical): fall back to the standard deviation, then to a tiny value.
    let sum = 0;
    for (const s of sorted) sum += (s - center) ** 2;
    spread = Math.sqrt(sum / Math.max(1, sorted.length)) || Math.max(Math.abs(center) * 1e-6, 1e-12);
  }
  return { center, spread, z };
}

/** Maps a raw score to 0..1. */
export function calibrate(cal: Calibration, raw: number): number {
  return 1 / (1 + Math.exp(-(raw - (cal.center + cal.z * cal.spread)) / cal.spread));
}
