/**
 * The heatmap colour scale (dark blue → teal → yellow → red, hottest = highest score) and its
 * transparency ramp. The viewer's Deep Zoom overlay and legend (src/api/colormap.ts) build on
 * `colourOf`, so heatmap.png and the viewer read alike.
 */
const STOPS: [number, [number, number, number]][] = [
  [0.0, [48, 18, 59]],
  [0.25, [40, 120, 220]],
  [0.5, [30, 200, 150]],
  [0.75, [250, 200, 40]],
  [1.0, [200, 20, 20]],
];

/** RGB of a score in [0, 1] (clamped; a non-finite score reads as 0). */
export function colourOf(score: number): [number, number, number] {
  const s = Math.min(1, Math.max(0, Number.isFinite(score) ? score : 0));
  for (let i = 1; i < STOPS.length; i++) {
    const [s1, c1] = STOPS[i]!;
    const [s0, c0] = STOPS[i - 1]!;
    if (s <= s1) {
      const f = (s - s0) / (s1 - s0);
      return [0, 1, 2].map((k) => Math.round(c0[k]! + f * (c1[k]! - c0[k]!))) as [number, number, number];
    }
  }
  return STOPS[STOPS.length - 1]![1];
}

/** RGBA of a calibrated score in 0..1; NaN (no tissue / not analysed) is fully transparent. */
export function heatmapRgba(score: number): [number, number, number, number] {
  if (!Number.isFinite(score)) return [0, 0, 0, 0];
  const s = Math.min(1, Math.max(0, score));
  const [r, g, b] = colourOf(s);
  // Low scores stay see-through so the tissue shows; anomalies are nearly opaque.
  const alpha = Math.round(255 * (0.35 + 0.6 * s));
  return [r, g, b, alpha];
}
