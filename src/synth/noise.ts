/**
 * Deterministic hashing, random streams and value noise for the synthetic slide generator.
 * Everything is a pure function of integers (seed, coordinates), so any tile can be rendered on
 * any thread in any order and come out bit-identical.
 */
import { mulberry32 } from '../util/prng.ts';

/** 32-bit avalanche hash of up to three integers and a seed (lowbias32-style mixing). */
export function hash3(x: number, y: number, z: number, seed: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (x | 0), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h ^ (y | 0), 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h ^ (z | 0), 0x27d4eb2f);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/** `hash3` scaled to [0, 1). */
export function hashUnit(x: number, y: number, z: number, seed: number): number {
  return hash3(x, y, z, seed) / 4294967296;
}

/** A seeded random stream (mulberry32): for placement decisions made once, never per pixel. */
export class Random {
  private readonly stream: () => number;
  constructor(seed: number, stream = 0) {
    this.stream = mulberry32(hash3(stream, 0x51ed, 0x2701, seed));
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.stream();
  }
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/**
 * 2D value noise in [0, 1] with smoothstep interpolation; `period` (a power of two, in lattice
 * cells) makes it tile seamlessly, 0 means aperiodic.
 */
export function valueNoise(x: number, y: number, seed: number, period = 0): number {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  let ix0 = x0, iy0 = y0, ix1 = x0 + 1, iy1 = y0 + 1;
  if (period > 0) {
    const m = period - 1;
    ix0 &= m; iy0 &= m; ix1 &= m; iy1 &= m;
  }
  const v00 = hashUnit(ix0, iy0, 0, seed);
  const v10 = hashUnit(ix1, iy0, 0, seed);
  const v01 = hashUnit(ix0, iy1, 0, seed);
  const v11 = hashUnit(ix1, iy1, 0, seed);
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const a = v00 + (v10 - v00) * sx;
  const b = v01 + (v11 - v01) * sx;
  return a + (b - a) * sy;
}

/** Fractal sum of `octaves` value-noise layers (each twice the frequency, half the amplitude), in [0, 1]. */
export function fbm(x: number, y: number, seed: number, octaves: number, period = 0): number {
  let sum = 0, amp = 1, norm = 0, f = 1;
  for (let o = 0; o < octaves; o++) {
    sum += amp * valueNoise(x * f, y * f, seed + o * 7919, period > 0 ? period * f : 0);
    norm += amp;
    amp *= 0.5;
    f *= 2;
  }
  return sum / norm;
}

/** Hermite step from 0 at `e0` to 1 at `e1`. */
export function smoothstep(e0: number, e1: number, v: number): number {
  const t = Math.min(1, Math.max(0, (v - e0) / (e1 - e0)));
  return t * t * (3 - 2 * t);
}
