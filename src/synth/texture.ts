/**
 * Procedural H&E-like tissue, as stain concentrations (hematoxylin h, eosin e) per pixel, computed
 * from (seed, level-0 coordinates) only: tissue islands on glass, fibrous pink stroma, purple
 * nuclei, glands with a lumen and an epithelial rim. Each layer is either a low-frequency field
 * sampled on a 16-px grid and interpolated, a lookup into the periodic stroma atlas, or objects
 * (nuclei, glands) placed by hashing a fixed cell grid, so neighbouring tiles agree at their seams.
 */
import { ATLAS_MASK, ATLAS_SIZE, type StromaAtlas } from './atlas.ts';
import { fbm, hash3, hashUnit, smoothstep, valueNoise } from './noise.ts';

/** Tissue where the island field exceeds this. */
export const TISSUE_THRESHOLD = 0.5;
/** Grid spacing (level-0 px) of the interpolated low-frequency fields. */
export const FIELD_GRID = 16;
const NUCLEUS_CELL = 14;
const NUCLEUS_MAX_RADIUS = 7;
const GLAND_CELL = 1024;
const GLAND_REACH = 260;

/** Everything a tile renderer needs that does not change from tile to tile. */
export interface TextureContext {
  seed: number;
  width: number;
  height: number;
  atlas: StromaAtlas;
  /** Island feature size in level-0 px (a fifth of the longer side: a few islands per slide). */
  islandScale: number;
  /**
   * Field units per level-0 px of edge detail: the island field's slope is about 0.3 per
   * islandScale, so perturbations scaled by this give edges ragged over a fixed number of pixels
   * whatever the slide size.
   */
  edgeUnit: number;
}

export function createTextureContext(seed: number, width: number, height: number, atlas: StromaAtlas): TextureContext {
  const islandScale = Math.max(width, height) / 5;
  return { seed, width, height, atlas, islandScale, edgeUnit: 0.3 / islandScale };
}

/** Island field at a level-0 point; tissue where it exceeds TISSUE_THRESHOLD. Fades out near the slide border. */
export function tissueField(ctx: TextureContext, x: number, y: number): number {
  const f = fbm(x / ctx.islandScale + 3.7, y / ctx.islandScale + 1.3, ctx.seed + 101, 5);
  const wavy = (valueNoise(x / 90, y / 90, ctx.seed + 102) - 0.5) * 60 * ctx.edgeUnit;
  const edge = Math.min(x / ctx.width, 1 - x / ctx.width, y / ctx.height, 1 - y / ctx.height);
  return f + wavy - 0.35 * (1 - smoothstep(0, 0.1, edge));
}

/** Per-tile scratch planes, reused across tiles (size × size each). */
export interface TilePlanes {
  size: number;
  alpha: Float32Array;
  h: Float32Array;
  e: Float32Array;
  /** Low-frequency grids ((size/16 + 1)² each): island field, eosin and hematoxylin scale. */
  gridT: Float32Array;
  gridE: Float32Array;
  gridH: Float32Array;
}

export function createTilePlanes(size: number): TilePlanes {
  const g = (size / FIELD_GRID + 1) ** 2;
  return {
    size,
    alpha: new Float32Array(size * size), h: new Float32Array(size * size), e: new Float32Array(size * size),
    gridT: new Float32Array(g), gridE: new Float32Array(g), gridH: new Float32Array(g),
  };
}

/**
 * Samples the island field on the tile's 16-px grid. Returns the largest value, so a tile whose
 * grid never comes near the threshold can be written as plain glass without rendering.
 */
export function sampleFieldGrid(ctx: TextureContext, x0: number, y0: number, p: TilePlanes): number {
  const n = p.size / FIELD_GRID + 1;
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      const t = tissueField(ctx, x0 + i * FIELD_GRID, y0 + j * FIELD_GRID);
      p.gridT[j * n + i] = t;
      if (t > max) max = t;
    }
  }
  return max;
}

/** Samples the stain-strength drift (eosin, hematoxylin scale) on the same grid; only for tiles with tissue. */
export function sampleColourGrid(ctx: TextureContext, x0: number, y0: number, p: TilePlanes): void {
  const n = p.size / FIELD_GRID + 1;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      const x = x0 + i * FIELD_GRID, y = y0 + j * FIELD_GRID, k = j * n + i;
      p.gridE[k] = 0.8 + 0.4 * valueNoise(x / 1500, y / 1500, ctx.seed + 301);
      p.gridH[k] = 0.85 + 0.3 * valueNoise(x / 2100, y / 2100, ctx.seed + 302);
    }
  }
}

/** True when no pixel of the tile can be tissue (its grid stays below the threshold by more than the edge raggedness). */
export function isGlassOnly(ctx: TextureContext, maxField: number): boolean {
  // Pixel grain moves the field by at most 6 edgeUnits; interpolation error between grid points is far smaller.
  return maxField < TISSUE_THRESHOLD - 12 * ctx.edgeUnit;
}

/**
 * Fills alpha (tissue opacity 0–1) and base stroma concentrations h, e for the tile at (x0, y0).
 * Alpha is applied later, in the colour pass, so objects painted on top inherit the island edge.
 */
export function paintStroma(ctx: TextureContext, x0: number, y0: number, p: TilePlanes): void {
  const { size, alpha, h, e, gridT, gridE, gridH } = p;
  const n = size / FIELD_GRID + 1;
  const { fibre, grain } = ctx.atlas;
  const lo = TISSUE_THRESHOLD - 1.5 * ctx.edgeUnit, hi = TISSUE_THRESHOLD + 1.5 * ctx.edgeUnit;
  const ragged = 12 * ctx.edgeUnit, invRamp = 1 / (hi - lo);
  // Interpolate the grids along y once per row (n values), then along x per pixel: 3 lerps a pixel.
  const rowT = new Float32Array(n), rowE = new Float32Array(n), rowH = new Float32Array(n);
  for (let y = 0; y < size; y++) {
    const gy = (y / FIELD_GRID) | 0, fy = (y % FIELD_GRID) / FIELD_GRID;
    for (let i = 0; i < n; i++) {
      const k = gy * n + i;
      rowT[i] = gridT[k] + (gridT[k + n] - gridT[k]) * fy;
      rowE[i] = gridE[k] + (gridE[k + n] - gridE[k]) * fy;
      rowH[i] = gridH[k] + (gridH[k + n] - gridH[k]) * fy;
    }
    const ay = ((y0 + y) & ATLAS_MASK) * ATLAS_SIZE;
    const row = y * size;
    for (let x = 0; x < size; x++) {
      const gx = (x / FIELD_GRID) | 0, fx = (x % FIELD_GRID) / FIELD_GRID;
      const a = ay + ((x0 + x) & ATLAS_MASK);
      const gr = grain[a] * (1 / 255);
      const t = rowT[gx] + (rowT[gx + 1] - rowT[gx]) * fx + ragged * (gr - 0.5);
      const i = row + x;
      alpha[i] = t <= lo ? 0 : t >= hi ? 1 : (t - lo) * invRamp;
      const es = rowE[gx] + (rowE[gx + 1] - rowE[gx]) * fx;
      const hs = rowH[gx] + (rowH[gx + 1] - rowH[gx]) * fx;
      e[i] = es * (0.14 + 0.34 * (fibre[a] * (1 / 255)) + 0.08 * (gr - 0.5));
      h[i] = hs * (0.05 + 0.05 * gr);
    }
  }
}

/** A nucleus as placed by the cell grid. */
export interface Nucleus { cx: number; cy: number; rx: number; ry: number; angle: number; darkness: number }

/** The normal nucleus of cell (ci, cj), or null when the cell is empty (glass or by chance). */
export function nucleusOfCell(ctx: TextureContext, ci: number, cj: number): Nucleus | null {
  const s = ctx.seed;
  const cx = ci * NUCLEUS_CELL + hashUnit(ci, cj, 4, s) * NUCLEUS_CELL;
  const cy = cj * NUCLEUS_CELL + hashUnit(ci, cj, 5, s) * NUCLEUS_CELL;
  const density = 0.22 + 0.45 * valueNoise(cx / 700, cy / 700, s + 201);
  if (hashUnit(ci, cj, 3, s) >= density) return null;
  if (tissueField(ctx, cx, cy) < TISSUE_THRESHOLD - 0.02) return null;
  const rx = 3 + 3 * hashUnit(ci, cj, 6, s);
  return { cx, cy, rx, ry: rx * (0.55 + 0.45 * hashUnit(ci, cj, 7, s)), angle: Math.PI * hashUnit(ci, cj, 8, s), darkness: 0.6 + 0.5 * hashUnit(ci, cj, 9, s) };
}

/**
 * Paints the normal nuclei overlapping the tile. `replace` lets a morphology anomaly swap a
 * nucleus for its own version (same cell, same stain mass) or drop it (return null).
 */
export function paintNuclei(ctx: TextureContext, x0: number, y0: number, p: TilePlanes, replace?: (n: Nucleus) => Nucleus | null): void {
  const m = NUCLEUS_MAX_RADIUS * 2;
  const i0 = Math.floor((x0 - m) / NUCLEUS_CELL), i1 = Math.floor((x0 + p.size + m) / NUCLEUS_CELL);
  const j0 = Math.floor((y0 - m) / NUCLEUS_CELL), j1 = Math.floor((y0 + p.size + m) / NUCLEUS_CELL);
  for (let cj = j0; cj <= j1; cj++) {
    for (let ci = i0; ci <= i1; ci++) {
      let nu = nucleusOfCell(ctx, ci, cj);
      if (nu && replace) nu = replace(nu);
      if (nu) splatNucleus(ctx, x0, y0, p, nu);
    }
  }
}

/** Draws one elliptical nucleus: hematoxylin up to `darkness` with chromatin grain, eosin pushed down. */
export function splatNucleus(ctx: TextureContext, x0: number, y0: number, p: TilePlanes, nu: Nucleus): void {
  const { size, h, e } = p;
  const grain = ctx.atlas.grain;
  const r = Math.ceil(Math.max(nu.rx, nu.ry)) + 1;
  const xa = Math.max(0, Math.floor(nu.cx - r) - x0), xb = Math.min(size - 1, Math.ceil(nu.cx + r) - x0);
  const ya = Math.max(0, Math.floor(nu.cy - r) - y0), yb = Math.min(size - 1, Math.ceil(nu.cy + r) - y0);
  if (xa > xb || ya > yb) return;
  const c = Math.cos(nu.angle), s = Math.sin(nu.angle);
  const irx2 = 1 / (nu.rx * nu.rx), iry2 = 1 / (nu.ry * nu.ry);
  for (let y = ya; y <= yb; y++) {
    const dy = y0 + y + 0.5 - nu.cy;
    const ay = ((y0 + y) & ATLAS_MASK) * ATLAS_SIZE;
    for (let x = xa; x <= xb; x++) {
      const dx = x0 + x + 0.5 - nu.cx;
      const u = dx * c + dy * s, v = -dx * s + dy * c;
      const q = u * u * irx2 + v * v * iry2;
      if (q >= 1) continue;
      const prof = Math.min(1, (1 - q) * 4);
      const i = y * size + x;
      const hv = nu.darkness * prof * (0.75 + 0.5 * (grain[ay + ((x0 + x + 301) & ATLAS_MASK)] / 255));
      if (hv > h[i]) h[i] = hv;
      e[i] *= 1 - 0.55 * prof;
    }
  }
}

interface Gland { cx: number; cy: number; a: number; b: number; angle: number; rim: number }

function glandOfCell(ctx: TextureContext, gi: number, gj: number): Gland | null {
  const s = ctx.seed;
  if (hashUnit(gi, gj, 21, s) >= 0.55) return null;
  const cx = (gi + 0.25 + 0.5 * hashUnit(gi, gj, 22, s)) * GLAND_CELL;
  const cy = (gj + 0.25 + 0.5 * hashUnit(gi, gj, 23, s)) * GLAND_CELL;
  if (tissueField(ctx, cx, cy) < TISSUE_THRESHOLD + 0.03) return null;
  const a = 50 + 150 * hashUnit(gi, gj, 24, s);
  return { cx, cy, a, b: a * (0.45 + 0.5 * hashUnit(gi, gj, 25, s)), angle: Math.PI * hashUnit(gi, gj, 26, s), rim: 14 + 10 * hashUnit(gi, gj, 27, s) };
}

/** Paints glands overlapping the tile: a purple epithelial rim lined with nuclei around a pale lumen. */
export function paintGlands(ctx: TextureContext, x0: number, y0: number, p: TilePlanes): void {
  const i0 = Math.floor((x0 - GLAND_REACH) / GLAND_CELL), i1 = Math.floor((x0 + p.size + GLAND_REACH) / GLAND_CELL);
  const j0 = Math.floor((y0 - GLAND_REACH) / GLAND_CELL), j1 = Math.floor((y0 + p.size + GLAND_REACH) / GLAND_CELL);
  for (let gj = j0; gj <= j1; gj++) {
    for (let gi = i0; gi <= i1; gi++) {
      const g = glandOfCell(ctx, gi, gj);
      if (g) paintGland(ctx, x0, y0, p, g, hash3(gi, gj, 28, ctx.seed));
    }
  }
}

function paintGland(ctx: TextureContext, x0: number, y0: number, p: TilePlanes, g: Gland, salt: number): void {
  const { size, h, e } = p;
  const A = g.a + g.rim, B = g.b + g.rim, R = Math.ceil(A) + 2;
  const xa = Math.max(0, Math.floor(g.cx - R) - x0), xb = Math.min(size - 1, Math.ceil(g.cx + R) - x0);
  const ya = Math.max(0, Math.floor(g.cy - R) - y0), yb = Math.min(size - 1, Math.ceil(g.cy + R) - y0);
  if (xa > xb || ya > yb) return;
  const c = Math.cos(g.angle), s = Math.sin(g.angle);
  // Rim nuclei first (they sit in the rim, drawn over the stroma), then the rim tint and lumen.
  const count = Math.round((Math.PI * (g.a + g.b + g.rim)) / 11);
  for (let k = 0; k < count; k++) {
    const t = (2 * Math.PI * (k + 0.3 * hashUnit(k, salt, 29, ctx.seed))) / count;
    const ra = g.a + g.rim * 0.5, rb = g.b + g.rim * 0.5;
    const lx = ra * Math.cos(t), ly = rb * Math.sin(t);
    const nx = lx * c - ly * s + g.cx, ny = lx * s + ly * c + g.cy;
    const normal = Math.atan2(ra * Math.sin(t), rb * Math.cos(t)) + g.angle;
    splatNucleus(ctx, x0, y0, p, { cx: nx, cy: ny, rx: g.rim * 0.3, ry: 3.2, angle: normal, darkness: 0.85 + 0.3 * hashUnit(k, salt, 30, ctx.seed) });
  }
  const ia2 = 1 / (g.a * g.a), ib2 = 1 / (g.b * g.b), iA2 = 1 / (A * A), iB2 = 1 / (B * B);
  for (let y = ya; y <= yb; y++) {
    const dy = y0 + y + 0.5 - g.cy;
    for (let x = xa; x <= xb; x++) {
      const dx = x0 + x + 0.5 - g.cx;
      const u = dx * c + dy * s, v = -dx * s + dy * c;
      const qOut = u * u * iA2 + v * v * iB2;
      if (qOut >= 1) continue;
      const i = y * size + x;
      const qIn = u * u * ia2 + v * v * ib2;
      if (qIn < 1) {
        const lumen = smoothstep(1, 0.85, qIn);
        h[i] *= 1 - 0.93 * lumen;
        e[i] *= 1 - 0.88 * lumen;
      } else {
        h[i] += 0.16;
        e[i] = e[i] * 0.8 + 0.06;
      }
    }
  }
}
