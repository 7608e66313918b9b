/**
 * Planted anomalies: where they go, what shape they have, and the exact inside test shared by the
 * renderer and the true mask. A shape is a star-convex blob: radius `r(θ) = radius · (1 + Σ a_k
 * cos(kθ + φ_k))`, k = 2..4, so it is irregular like a lesion yet has an analytic inside test.
 */
import { UnprocessableError } from '../errors.ts';
import { Random } from './noise.ts';
import { TISSUE_THRESHOLD, tissueField, type TextureContext } from './texture.ts';

/**
 * - `dense-nuclei`: texture and colour differ: packed, dark, large nuclei (tumour-like), more hematoxylin.
 * - `morphology`: stain-matched procedural anomaly: same nuclei count, size and darkness and the same
 *   fibre statistics, but nuclei spindle-shaped and aligned, fibres turned by 90°.
 * - `real-tissue`: a patch of a real H&E image, colours as scanned.
 * - `real-stain-matched`: a real patch colour-transferred (Reinhard, Lab mean/std) to the background's tissue.
 */
export type AnomalyKind = 'dense-nuclei' | 'morphology' | 'real-tissue' | 'real-stain-matched';
export const ANOMALY_KINDS: readonly AnomalyKind[] = ['dense-nuclei', 'morphology', 'real-tissue', 'real-stain-matched'];

/** One planted anomaly; every field is JSON (it is written as is to the sidecar). */
export interface Anomaly {
  /** 1-based, in placement order. */
  id: number;
  kind: AnomalyKind;
  /** Tight level-0 bounding box of the shape (pixels whose centre lies inside), x/y inclusive, width/height in px. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Requested diameter in level-0 px (the box is at most this size). */
  size: number;
  centerX: number;
  centerY: number;
  radius: number;
  /** [a2, φ2, a3, φ3, a4, φ4] of the boundary harmonics. */
  harmonics: number[];
  /** Orientation (radians) of aligned structure in `morphology` anomalies. */
  angle: number;
  /** Real-tissue kinds: the source file and the prepared patch it samples. */
  source?: string;
  patchIndex?: number;
  /** Offset into the (mirror-tiled) patch, so anomalies from one source show different tissue. */
  patchOffsetX?: number;
  patchOffsetY?: number;
}

const HARMONIC_SUM = 0.2;

/** Boundary radius of the shape in direction θ. */
export function shapeRadius(a: Anomaly, theta: number): number {
  const h = a.harmonics;
  let f = 1;
  for (let k = 0; k < 3; k++) f += h[2 * k] * Math.cos((k + 2) * theta + h[2 * k + 1]);
  return a.radius * f;
}

/** True when the level-0 point (x, y) lies inside the anomaly (the mask and the w > 0.5 rule of the renderer). */
export function isInside(a: Anomaly, x: number, y: number): boolean {
  const dx = x - a.centerX, dy = y - a.centerY;
  return Math.hypot(dx, dy) < shapeRadius(a, Math.atan2(dy, dx));
}

/** Blend weight 0–1 at a level-0 point: a 2-px ramp centred on the boundary (0.5 exactly on it). */
export function insideWeight(a: Anomaly, x: number, y: number): number {
  const dx = x - a.centerX, dy = y - a.centerY;
  const d = Math.hypot(dx, dy);
  if (d > a.radius * (1 + HARMONIC_SUM) + 1) return 0;
  const w = (shapeRadius(a, Math.atan2(dy, dx)) - d) / 2 + 0.5;
  return w <= 0 ? 0 : w >= 1 ? 1 : w;
}

/** Fraction of a level-0 rectangle covered by anomalies, on a grid of `step` px (for scoring patches against the truth). */
export function anomalyCoverage(anomalies: readonly Anomaly[], x: number, y: number, width: number, height: number, step = 4): number {
  const hits = anomalies.filter((a) => a.x < x + width && a.x + a.width > x && a.y < y + height && a.y + a.height > y);
  if (hits.length === 0) return 0;
  let inside = 0, total = 0;
  for (let py = y + step / 2; py < y + height; py += step) {
    for (let px = x + step / 2; px < x + width; px += step) {
      total++;
      if (hits.some((a) => isInside(a, px, py))) inside++;
    }
  }
  return inside / total;
}

/** What placement needs to know. */
export interface PlacementOptions {
  count: number;
  kinds: readonly AnomalyKind[];
  minSize: number;
  maxSize: number;
  /** Minimum gap between anomaly boxes (level-0 px), so each is its own connected component in the mask. */
  gap: number;
  /** Real kinds: number of prepared patches per kind, and their source names. */
  realPatches: { raw: number[]; matched: number[]; names: string[] };
}

/**
 * Places `count` anomalies inside tissue, not overlapping, sizes log-spaced from minSize to
 * maxSize, kinds cycled. Deterministic for (seed, options). Throws UnprocessableError when the
 * slide has no room for them.
 */
export function placeAnomalies(ctx: TextureContext, seed: number, o: PlacementOptions): Anomaly[] {
  const rng = new Random(seed, 0xa40);
  const sizes = Array.from({ length: o.count }, (_, i) =>
    Math.round(o.count === 1 ? o.maxSize : o.minSize * (o.maxSize / o.minSize) ** (i / (o.count - 1))),
  );
  const order = sizes.map((s, i) => ({ s, i })).sort((p, q) => q.s - p.s || p.i - q.i); // big ones first: hardest to fit
  const placed: Anomaly[] = new Array(o.count);
  for (const { s, i } of order) {
    const kind = o.kinds[i % o.kinds.length];
    placed[i] = placeOne(ctx, rng, s, kind, i + 1, placed.filter(Boolean), o);
  }
  return placed;
}

function placeOne(ctx: TextureContext, rng: Random, size: number, kind: AnomalyKind, id: number, others: Anomaly[], o: PlacementOptions): Anomaly {
  const margin = size / 2 + 16;
  if (ctx.width < 2 * margin || ctx.height < 2 * margin) {
    throw new UnprocessableError(`Slide ${ctx.width}×${ctx.height} is too small for a ${size}-px anomaly; lower --max-anomaly-size`);
  }
  const harmonics: number[] = [];
  const amps = [rng.next(), rng.next(), rng.next()];
  const sum = amps.reduce((p, q) => p + q, 0) || 1;
  amps.forEach((v) => harmonics.push((HARMONIC_SUM * v) / sum, rng.range(0, 2 * Math.PI)));
  const radius = size / 2 / (1 + HARMONIC_SUM);
  for (let attempt = 0; attempt < 4000; attempt++) {
    const cx = rng.range(margin, ctx.width - margin), cy = rng.range(margin, ctx.height - margin);
    if (tissueField(ctx, cx, cy) < TISSUE_THRESHOLD + 0.02) continue;
    let inTissue = true;
    for (let k = 0; k < 8 && inTissue; k++) {
      const t = (k * Math.PI) / 4;
      inTissue = tissueField(ctx, cx + Math.cos(t) * radius, cy + Math.sin(t) * radius) > TISSUE_THRESHOLD - 0.03;
    }
    if (!inTissue) continue;
    const a: Anomaly = { id, kind, x: 0, y: 0, width: 0, height: 0, size, centerX: cx, centerY: cy, radius, harmonics, angle: rng.range(0, Math.PI) };
    Object.assign(a, tightBox(a));
    if (others.some((b) => a.x - o.gap < b.x + b.width && b.x - o.gap < a.x + a.width && a.y - o.gap < b.y + b.height && b.y - o.gap < a.y + a.height)) continue;
    if (kind === 'real-tissue' || kind === 'real-stain-matched') {
      const list = kind === 'real-tissue' ? o.realPatches.raw : o.realPatches.matched;
      const which = rng.int(list.length);
      a.patchIndex = list[which];
      a.source = o.realPatches.names[which];
      a.patchOffsetX = rng.int(4096);
      a.patchOffsetY = rng.int(4096);
    }
    return a;
  }
  throw new UnprocessableError(
    `Could not place anomaly ${id} (${size} px) inside tissue without overlap on a ${ctx.width}×${ctx.height} slide; use fewer or smaller anomalies or a larger slide`,
  );
}

/** Tight box of the pixels whose centre is inside the shape. */
function tightBox(a: Anomaly): { x: number; y: number; width: number; height: number } {
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let k = 0; k < 2048; k++) {
    const t = (2 * Math.PI * k) / 2048;
    const r = shapeRadius(a, t);
    const x = a.centerX + r * Math.cos(t), y = a.centerY + r * Math.sin(t);
    minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
  }
  // Pixel (px) is inside when px + 0.5 is inside: the first such px is ≥ floor(minX - 0.5).
  const x = Math.floor(minX - 0.5), y = Math.floor(minY - 0.5);
  return { x, y, width: Math.ceil(maxX - 0.5) - x + 1, height: Math.ceil(maxY - 0.5) - y + 1 };
}
