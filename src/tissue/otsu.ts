/**
 * Otsu's threshold on a 256-bin histogram: the bin edge that maximises the between-class variance.
 * Returns the first bin of the upper class, so `value >= threshold` is the foreground test.
 * An empty or single-valued histogram returns 256 (nothing above).
 */
export function otsuThreshold(histogram: ArrayLike<number>): number {
  const bins = histogram.length;
  let total = 0;
  let sumAll = 0;
  for (let i = 0; i < bins; i++) {
    total += histogram[i]!;
    sumAll += i * histogram[i]!;
  }
  if (total === 0) return bins;
  let weightLow = 0;
  let sumLow = 0;
  let best = -1;
  let bestIndex = bins;
  for (let t = 1; t < bins; t++) {
    weightLow += histogram[t - 1]!;
    sumLow += (t - 1) * histogram[t - 1]!;
    const weightHigh = total - weightLow;
    if (weightLow === 0 || weightHigh === 0) continue;
    const meanLow = sumLow / weightLow;
    const meanHigh = (sumAll - sumLow) / weightHigh;
    const between = weightLow * weightHigh * (meanLow - meanHigh) ** 2;
    if (between > best) {
      best = between;
      bestIndex = t;
    }
  }
  return bestIndex;
}
