/**
 * The heatmap's colour scale for the Deep Zoom heatmap layer and the viewer's legend (served as
 * /api/legend.png). It is src/heatmap/colormap.ts's ramp, so the viewer, its legend and
 * heatmap.png always agree.
 */
import { colourOf } from '../heatmap/colormap.ts';

export { colourOf };

/** A 256-entry lookup table (score quantised to 1/255). */
export const COLOUR_LUT: readonly [number, number, number][] = Array.from({ length: 256 }, (_, i) => colourOf(i / 255));
