/**
 * Renders one level-0 tile of a synthetic slide to RGB: background tissue (procedural or mirrored
 * real H&E), then the planted anomalies that reach into the tile. A pure function of the setup and
 * the tile's level-0 origin, so tiles can be rendered on any thread in any order.
 */
import { type Anomaly, insideWeight, isInside } from './anomalies.ts';
import { buildStromaAtlas, ATLAS_MASK, ATLAS_SIZE, type StromaAtlas } from './atlas.ts';
import { hashUnit } from './noise.ts';
import type { RgbPatch } from './real-sources.ts';
import { buildHematoxylinOverlay, buildStainLut, E_MAX, E_STEPS, GLASS_RGB, H_MAX, H_STEPS } from './stain.ts';
import {
  createTextureContext, createTilePlanes, isGlassOnly, paintGlands, paintNuclei, paintStroma, sampleColourGrid, sampleFieldGrid, splatNucleus,
  type Nucleus, type TextureContext, type TilePlanes,
} from './texture.ts';

/** Everything that defines a slide's pixels; plain data, so it can be posted to a worker. */
export interface RenderSetup {
  seed: number;
  width: number;
  height: number;
  tileSize: number;
  background: 'procedural' | 'real';
  anomalies: Anomaly[];
  /** Prepared real patches, indexed by `Anomaly.patchIndex`. */
  patches: RgbPatch[];
  /** Mirror-tiled over the whole slide when background is 'real'. */
  backgroundPatch?: RgbPatch;
}

const DENSE_CELL = 9;

/** Reflect-pads an index into [0, n): …2 1 0 | 0 1 2 … n-1 | n-1 n-2 … */
function mirror(i: number, n: number): number {
  const m = ((i % (2 * n)) + 2 * n) % (2 * n);
  return m < n ? m : 2 * n - 1 - m;
}

export class TileRenderer {
  readonly ctx: TextureContext;
  private readonly planes: TilePlanes;
  private readonly lut = buildStainLut();
  private readonly overlay = buildHematoxylinOverlay();
  /** Per pixel: index+1 of the anomaly covering it in the current tile (anomalies never overlap). */
  private readonly owner: Uint8Array;
  private readonly weight: Float32Array;

  constructor(readonly setup: RenderSetup, atlas: StromaAtlas = buildStromaAtlas(setup.seed)) {
    this.ctx = createTextureContext(setup.seed, setup.width, setup.height, atlas);
    this.planes = createTilePlanes(setup.tileSize);
    this.owner = new Uint8Array(setup.tileSize * setup.tileSize);
    this.weight = new Float32Array(setup.tileSize * setup.tileSize);
  }

  /**
   * Renders the tile whose top-left level-0 pixel is (x0, y0) into `out` (tileSize² × 3 bytes).
   * Returns false when the tile is bare glass (then `out` is uniform GLASS_RGB). Pixels beyond
   * the slide's right/bottom edge are glass.
   */
  render(x0: number, y0: number, out: Uint8Array): boolean {
    const T = this.setup.tileSize, p = this.planes;
    const local = this.setup.anomalies.filter((a) => a.x - 2 < x0 + T && a.x + a.width + 2 > x0 && a.y - 2 < y0 + T && a.y + a.height + 2 > y0);
    if (local.length > 255) throw new Error('more than 255 anomalies in one tile');
    const maxField = sampleFieldGrid(this.ctx, x0, y0, p);
    if (isGlassOnly(this.ctx, maxField) && local.length === 0) {
      out.fill(GLASS_RGB);
      return false;
    }
    sampleColourGrid(this.ctx, x0, y0, p);
    paintStroma(this.ctx, x0, y0, p);
    const real = this.setup.background === 'real';
    if (real) { p.h.fill(0); p.e.fill(0); }
    this.owner.fill(0);
    local.forEach((a, k) => this.paintWeights(a, k + 1, x0, y0));
    const morph = local.filter((a) => a.kind === 'morphology');
    if (!real) {
      morph.forEach((a) => this.turnFibres(a, local.indexOf(a) + 1, x0, y0));
      paintNuclei(this.ctx, x0, y0, p, morph.length ? (nu) => spindle(nu, morph) : undefined);
      paintGlands(this.ctx, x0, y0, p);
    }
    for (const a of local) if (a.kind === 'dense-nuclei') this.paintDenseNuclei(a, local.indexOf(a) + 1, x0, y0);
    if (real) this.colourReal(x0, y0, out); else this.colourProcedural(out);
    for (const a of local) {
      if (a.patchIndex !== undefined) this.blendPatch(a, local.indexOf(a) + 1, x0, y0, out);
    }
    this.glassBeyondEdge(x0, y0, out);
    return true;
  }

  /** Blend weights of one anomaly; forces tissue (alpha) inside it. */
  private paintWeights(a: Anomaly, id: number, x0: number, y0: number): void {
    const T = this.setup.tileSize, { alpha } = this.planes;
    const xa = Math.max(0, a.x - 2 - x0), xb = Math.min(T, a.x + a.width + 2 - x0);
    const ya = Math.max(0, a.y - 2 - y0), yb = Math.min(T, a.y + a.height + 2 - y0);
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) {
        const w = insideWeight(a, x0 + x + 0.5, y0 + y + 0.5);
        if (w <= 0) continue;
        const i = y * T + x;
        this.owner[i] = id;
        this.weight[i] = w;
        if (w > alpha[i]) alpha[i] = w;
      }
    }
  }

  /** Morphology anomaly: swap the fibre field for its transpose (same statistics, perpendicular bundles). */
  private turnFibres(a: Anomaly, id: number, x0: number, y0: number): void {
    const { e } = this.planes, { fibre, fibreCross } = this.ctx.atlas;
    this.forOwned(a, id, x0, y0, (i, x, y) => {
      const k = ((y0 + y) & ATLAS_MASK) * ATLAS_SIZE + ((x0 + x) & ATLAS_MASK);
      e[i] += this.weight[i] * 0.34 * ((fibreCross[k] - fibre[k]) / 255);
    });
  }

  /** Tumour-like cluster: hyperchromatic background and packed large dark nuclei. */
  private paintDenseNuclei(a: Anomaly, id: number, x0: number, y0: number): void {
    const { h, e } = this.planes;
    this.forOwned(a, id, x0, y0, (i) => {
      h[i] += 0.16 * this.weight[i];
      e[i] *= 1 - 0.35 * this.weight[i];
    });
    const T = this.setup.tileSize, s = this.setup.seed + a.id * 7717;
    const i0 = Math.floor(Math.max(a.x, x0 - 12) / DENSE_CELL), i1 = Math.floor(Math.min(a.x + a.width, x0 + T + 12) / DENSE_CELL);
    const j0 = Math.floor(Math.max(a.y, y0 - 12) / DENSE_CELL), j1 = Math.floor(Math.min(a.y + a.height, y0 + T + 12) / DENSE_CELL);
    for (let cj = j0; cj <= j1; cj++) {
      for (let ci = i0; ci <= i1; ci++) {
        if (hashUnit(ci, cj, 41, s) > 0.8) continue;
        const cx = (ci + hashUnit(ci, cj, 42, s)) * DENSE_CELL, cy = (cj + hashUnit(ci, cj, 43, s)) * DENSE_CELL;
        if (!isInside(a, cx, cy)) continue;
        const rx = 4 + 3 * hashUnit(ci, cj, 44, s);
        splatNucleus(this.ctx, x0, y0, this.planes, {
          cx, cy, rx, ry: rx * (0.7 + 0.3 * hashUnit(ci, cj, 45, s)), angle: Math.PI * hashUnit(ci, cj, 46, s), darkness: 1.05 + 0.45 * hashUnit(ci, cj, 47, s),
        });
      }
    }
  }

  private colourProcedural(out: Uint8Array): void {
    const { alpha, h, e } = this.planes, lut = this.lut;
    const hs = (H_STEPS - 1) / H_MAX, es = (E_STEPS - 1) / E_MAX;
    for (let i = 0, o = 0; i < alpha.length; i++, o += 3) {
      const al = alpha[i];
      let hq = (h[i] * al * hs + 0.5) | 0, eq = (e[i] * al * es + 0.5) | 0;
      if (hq > H_STEPS - 1) hq = H_STEPS - 1; else if (hq < 0) hq = 0;
      if (eq > E_STEPS - 1) eq = E_STEPS - 1; else if (eq < 0) eq = 0;
      const k = (hq * E_STEPS + eq) * 3;
      out[o] = lut[k]; out[o + 1] = lut[k + 1]; out[o + 2] = lut[k + 2];
    }
  }

  /** Real background: the patch mirror-tiled, faded to glass outside islands, extra hematoxylin laid over. */
  private colourReal(x0: number, y0: number, out: Uint8Array): void {
    const bg = this.setup.backgroundPatch!;
    const T = this.setup.tileSize, { alpha, h } = this.planes, ov = this.overlay;
    const hs = (H_STEPS - 1) / H_MAX;
    for (let y = 0; y < T; y++) {
      const row = mirror(y0 + y, bg.height) * bg.width;
      for (let x = 0; x < T; x++) {
        const i = y * T + x, o = i * 3, s = (row + mirror(x0 + x, bg.width)) * 3, al = alpha[i];
        let hq = (h[i] * hs + 0.5) | 0;
        if (hq > H_STEPS - 1) hq = H_STEPS - 1;
        for (let c = 0; c < 3; c++) {
          const v = GLASS_RGB + al * (bg.data[s + c] - GLASS_RGB);
          out[o + c] = hq > 0 ? (v * ov[hq * 3 + c]) >> 8 : v;
        }
      }
    }
  }

  /** Real-tissue anomaly: the prepared patch, mirror-tiled from the anomaly's offset, blended by weight. */
  private blendPatch(a: Anomaly, id: number, x0: number, y0: number, out: Uint8Array): void {
    const patch = this.setup.patches[a.patchIndex!];
    const ox = (a.patchOffsetX ?? 0) - a.x, oy = (a.patchOffsetY ?? 0) - a.y;
    this.forOwned(a, id, x0, y0, (i, x, y) => {
      const s = (mirror(y0 + y + oy, patch.height) * patch.width + mirror(x0 + x + ox, patch.width)) * 3;
      const w = this.weight[i], o = i * 3;
      for (let c = 0; c < 3; c++) out[o + c] = Math.round(w * patch.data[s + c] + (1 - w) * out[o + c]);
    });
  }

  private forOwned(a: Anomaly, id: number, x0: number, y0: number, fn: (i: number, x: number, y: number) => void): void {
    const T = this.setup.tileSize;
    const xa = Math.max(0, a.x - 2 - x0), xb = Math.min(T, a.x + a.width + 2 - x0);
    const ya = Math.max(0, a.y - 2 - y0), yb = Math.min(T, a.y + a.height + 2 - y0);
    for (let y = ya; y < yb; y++) {
      for (let x = xa; x < xb; x++) {
        const i = y * T + x;
        if (this.owner[i] === id) fn(i, x, y);
      }
    }
  }

  private glassBeyondEdge(x0: number, y0: number, out: Uint8Array): void {
    const T = this.setup.tileSize;
    const w = Math.min(T, this.setup.width - x0), h = Math.min(T, this.setup.height - y0);
    if (w === T && h === T) return;
    for (let y = 0; y < T; y++) {
      if (y >= h) { out.fill(GLASS_RGB, y * T * 3, (y + 1) * T * 3); continue; }
      if (w < T) out.fill(GLASS_RGB, (y * T + w) * 3, (y + 1) * T * 3);
    }
  }
}

/** A normal nucleus inside a morphology anomaly becomes a spindle of the same area, aligned with the anomaly. */
function spindle(nu: Nucleus, morph: Anomaly[]): Nucleus {
  const a = morph.find((m) => isInside(m, nu.cx, nu.cy));
  if (!a) return nu;
  const area = nu.rx * nu.ry, k = 3.2;
  return { ...nu, rx: Math.sqrt(area * k), ry: Math.sqrt(area / k), angle: a.angle + 0.15 * (nu.angle - Math.PI / 2) };
}
