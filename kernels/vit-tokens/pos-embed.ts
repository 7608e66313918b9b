/**
 * Position tables for any input size, on the host (once per size, then uploaded): the trained
 * grid resized to the new grid with half-pixel centres (align_corners=False) as timm's
 * `resample_abs_pos_embed` does, bilinear or bicubic (Keys a = −0.75, edge-clamped, as
 * torch.nn.functional.interpolate), and the full [prefix + grid², D] table the token kernel adds.
 */
import { invalidParameter } from '../../src/errors.ts';

export type PosInterpolation = 'bilinear' | 'bicubic';

function cubic(t: number): [number, number, number, number] {
  const a = -0.75;
  const w = (x: number) => {
    x = Math.abs(x);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
  };
  return [w(t + 1), w(t), w(1 - t), w(2 - t)];
}

/** Resizes a [from², D] grid of embeddings to [to², D]. */
export function resizePosGrid(grid: Float32Array, from: number, to: number, D: number, mode: PosInterpolation = 'bicubic'): Float32Array {
  if (grid.length !== from * from * D) throw invalidParameter('grid.length', `${from}² × ${D}`, grid.length);
  if (from === to) return grid.slice();
  const out = new Float32Array(to * to * D);
  const scale = from / to;
  const clamp = (i: number) => Math.min(Math.max(i, 0), from - 1);
  const taps = (o: number): Array<[number, number]> => {
    const f = (o + 0.5) * scale - 0.5;
    if (mode === 'bilinear') {
      const c = Math.min(Math.max(f, 0), from - 1), i0 = Math.floor(c), t = c - i0;
      return [[i0, 1 - t], [clamp(i0 + 1), t]];
    }
    const i0 = Math.floor(f), t = f - i0;
    const w = cubic(t);
    return [[clamp(i0 - 1), w[0]], [clamp(i0), w[1]], [clamp(i0 + 1), w[2]], [clamp(i0 + 2), w[3]]];
  };
  const tapsFor = Array.from({ length: to }, (_, o) => taps(o));
  for (let oy = 0; oy < to; oy++) for (let ox = 0; ox < to; ox++) {
    const dst = (oy * to + ox) * D;
    for (const [y, wy] of tapsFor[oy]!) for (const [x, wx] of tapsFor[ox]!) {
      const src = (y * from + x) * D, w = wy * wx;
      for (let d = 0; d < D; d++) out[dst + d]! += w * grid[src + d]!;
    }
  }
  return out;
}

/**
 * The table the token kernel adds for a sequence of `prefix` + grid² tokens: `pos` is the trained
 * pos_embed ([prefix + from², D] when it includes the prefix, else [from², D]).
 */
export function positionTable(pos: Float32Array, D: number, prefix: number, includesPrefix: boolean, grid: number, mode: PosInterpolation = 'bicubic'): Float32Array {
  const prefixRows = includesPrefix ? prefix : 0;
  const from = Math.round(Math.sqrt(pos.length / D - prefixRows));
  if (from * from * D + prefixRows * D !== pos.length) throw invalidParameter('pos.length', `(${prefixRows} + n²) × ${D}`, pos.length);
  const out = new Float32Array((prefix + grid * grid) * D);
  if (includesPrefix) out.set(pos.subarray(0, prefix * D));
  out.set(resizePosGrid(pos.subarray(prefixRows * D), from, grid, D, mode), prefix * D);
  return out;
}
