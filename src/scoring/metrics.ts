/**
 * Evaluation metrics for patch scores against a true anomaly mask.
 * - AUROC: the probability that a random anomalous patch scores above a random normal one (ties
 *   count one half), by the rank-sum (Mann–Whitney) formula.
 * - AUPRO (Bergmann et al., MVTec AD, 2021): the area under the per-region-overlap curve against
 *   the false-positive rate, integrated up to `maxFpr` (0.3 by default) and divided by it, so each
 *   anomalous region counts equally whatever its size — AUROC is inflated by the mass of normal patches.
 */
import { labelComponents } from '../tissue/morphology.ts';

/**
 * AUROC of scores against 0/1 labels. NaN when one class is empty.
 * @example auroc([0.1, 0.9], [0, 1]) // 1
 */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const midRank = (i + j) / 2 + 1; // average rank of a run of ties
    for (let t = i; t <= j; t++) {
      if (labels[order[t]!]) {
        positives++;
        rankSum += midRank;
      }
    }
    i = j + 1;
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * AUPRO on a grid of patch scores. `valid` marks the patches that count (tissue tiles); true regions
 * are the 4-connected components of `truth` among valid patches.
 * @param maxFpr integration limit on the false-positive rate @defaultValue 0.3
 */
export function aupro(
  scores: ArrayLike<number>,
  truth: ArrayLike<number>,
  valid: ArrayLike<number>,
  width: number,
  height: number,
  maxFpr = 0.3,
): number {
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < mask.length; i++) mask[i] = truth[i] && valid[i] ? 1 : 0;
  const { labels, sizes } = labelComponents(mask, width, height);
  const regions = sizes.length - 1;
  let normals = 0;
  const order: number[] = [];
  for (let i = 0; i < mask.length; i++) {
    if (!valid[i]) continue;
    order.push(i);
    if (!mask[i]) normals++;
  }
  if (regions === 0 || normals === 0) return NaN;
  order.sort((a, b) => scores[b]! - scores[a]!);
  const covered = new Float64Array(sizes.length);
  let falsePositives = 0;
  let proSum = 0; // Σ over regions of covered fraction
  let area = 0;
  let lastFpr = 0;
  let lastPro = 0;
  for (let i = 0; i < order.length; ) {
    // Lower the threshold past one run of equal scores.
    let j = i;
    while (j < order.length && scores[order[j]!] === scores[order[i]!]) {
      const p = order[j]!;
      const label = labels[p]!;
      if (label) {
        covered[label]! += 1;
        proSum += 1 / sizes[label]!;
      } else {
        falsePositives++;
      }
      j++;
    }
    i = j;
    const fpr = falsePositives / normals;
    const pro = proSum / regions;
    if (fpr >= maxFpr) {
      const t = fpr > lastFpr ? (maxFpr - lastFpr) / (fpr - lastFpr) : 0;
      const proAtLimit = lastPro + t * (pro - lastPro);
      area += ((maxFpr - lastFpr) * (lastPro + proAtLimit)) / 2;
      return area / maxFpr;
    }
    area += ((fpr - lastFpr) * (lastPro + pro)) / 2;
    lastFpr = fpr;
    lastPro = pro;
  }
  area += (maxFpr - lastFpr) * lastPro;
  return area / maxFpr;
}
