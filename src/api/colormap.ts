/**
 * The heatmap's colour scale: a perceptually ordered ramp (dark blue → teal → yellow → red) so
 * the highest scores read as the hottest. Shared by the Deep Zoom heatmap layer and the viewer's
 * legend (served as /api/legend.png), so both always agree.
 */
const STOPS: [number, [number, number, number]][] = [
  [0.0, [48, 18, 59]],
  [0.25, [40, 120, 220]],
  [0.5, [30, 200, 150]],
  [0.75, [250, 200, 40]],
  [1.0, [200, 20, 20]],
];

/** RGB of a score in [0, 1] (clamped). */
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

/** A 256-entry lookup table (score quantised to 1/255). */
export const COLOUR_LUT: readonly [number, number, number][] = Array.from({ length: 256 }, (_, i) => colourOf(i / 255));
