/**
 * The fine-detail layer of synthetic stroma: a periodic 1024 × 1024 texture of wavy collagen fibres
 * and pixel grain, rendered once per seed and then looked up per pixel (`(y & 1023) * 1024 + (x & 1023)`).
 * Evaluating multi-octave noise for every one of 10¹⁰ pixels of a 100k² slide would cost minutes
 * per octave; a lookup costs a few nanoseconds. Repetition every 1024 px is hidden under the
 * aperiodic layers drawn on top (nuclei, glands, islands, colour drift).
 */
import { fbm, valueNoise } from './noise.ts';

export const ATLAS_SIZE = 1024;
export const ATLAS_MASK = ATLAS_SIZE - 1;

/** Fibre intensity and grain, 0–255 each, row-major ATLAS_SIZE². */
export interface StromaAtlas {
  /** Collagen fibre density along wavy bundles. */
  fibre: Uint8Array;
  /** Fibre field rotated by 90°, for morphology anomalies that keep stain statistics. */
  fibreCross: Uint8Array;
  /** Pixel-scale grain (chromatin texture, section thickness). */
  grain: Uint8Array;
}

const recent = new Map<number, StromaAtlas>();

/** Renders the atlas for `seed` (about 0.4 s; the last two are kept); deterministic. */
export function buildStromaAtlas(seed: number): StromaAtlas {
  const hit = recent.get(seed);
  if (hit) return hit;
  const atlas = renderAtlas(seed);
  recent.set(seed, atlas);
  if (recent.size > 2) recent.delete(recent.keys().next().value!);
  return atlas;
}

function renderAtlas(seed: number): StromaAtlas {
  const n = ATLAS_SIZE;
  const fibre = new Uint8Array(n * n);
  const fibreCross = new Uint8Array(n * n);
  const grain = new Uint8Array(n * n);
  // Integer wave vectors keep sin() periodic over the atlas; ~80 cycles per 1024 px ≈ 13 px fibre spacing.
  const k1 = [78, 21], k2 = [-17, 83];
  // Fields slower than 16 px are sampled every 4 px and interpolated (periodically): 16× fewer noise calls.
  const warpGrid = periodicGrid(n, (x, y) => fbm(x / 128, y / 128, seed + 11, 3, n / 128) + 0.35 * valueNoise(x / 32, y / 32, seed + 12, n / 32));
  const mixGrid = periodicGrid(n, (x, y) => valueNoise(x / 256, y / 256, seed + 13, n / 256));
  const breakGrid = periodicGrid(n, (x, y) => valueNoise(x / 16, y / 16, seed + 14, n / 16));
  const t = (2 * Math.PI) / n;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const w = sampleGrid(warpGrid, n, x, y) * 2 * Math.PI * 4;
      const mixField = sampleGrid(mixGrid, n, x, y);
      const breaks = sampleGrid(breakGrid, n, x, y);
      const a = 0.5 + 0.5 * Math.sin((k1[0] * x + k1[1] * y) * t + w);
      const b = 0.5 + 0.5 * Math.sin((k2[0] * x + k2[1] * y) * t + w);
      const m = Math.min(1, Math.max(0, (mixField - 0.3) / 0.4));
      const a3 = a * a * a, b3 = b * b * b;
      const f = (a3 * a3 * (1 - m) + b3 * b3 * m) * (0.3 + 0.7 * breaks) + 0.25 * mixField;
      const g = fbm(x / 4, y / 4, seed + 17, 2, n / 4);
      const i = y * n + x;
      fibre[i] = Math.round(255 * Math.min(1, f));
      grain[i] = Math.round(255 * g);
      fibreCross[x * n + y] = fibre[i]; // transpose: same statistics, perpendicular orientation
    }
  }
  return { fibre, fibreCross, grain };
}

const GRID_STEP = 4;

/** `fn` sampled every GRID_STEP px over one period. */
function periodicGrid(n: number, fn: (x: number, y: number) => number): Float32Array {
  const m = n / GRID_STEP;
  const g = new Float32Array(m * m);
  for (let j = 0; j < m; j++) for (let i = 0; i < m; i++) g[j * m + i] = fn(i * GRID_STEP, j * GRID_STEP);
  return g;
}

/** Bilinear lookup into a periodic grid. */
function sampleGrid(g: Float32Array, n: number, x: number, y: number): number {
  const m = n / GRID_STEP;
  const gx = Math.floor(x / GRID_STEP), gy = Math.floor(y / GRID_STEP);
  const fx = (x % GRID_STEP) / GRID_STEP, fy = (y % GRID_STEP) / GRID_STEP;
  const x1 = (gx + 1) % m, y1 = (gy + 1) % m;
  const a = g[gy * m + gx] * (1 - fx) + g[gy * m + x1] * fx;
  const b = g[y1 * m + gx] * (1 - fx) + g[y1 * m + x1] * fx;
  return a + (b - a) * fy;
}
