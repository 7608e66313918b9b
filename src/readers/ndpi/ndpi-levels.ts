import type { RgbImage } from '../types.ts';
import type { JpegStrip } from './jpeg-strip.ts';

/**
 * An exposed pyramid level: a stored JPEG strip read at scale 1, or a level OpenSlide would make
 * by decoding a stored level at 1/2, 1/4 or 1/8 (libjpeg DCT scaling). We make those by decoding
 * the stored pixels and averaging s × s boxes, which matches OpenSlide within ~0.5 grey levels on
 * the test slide (measured: mean absolute difference 0.45–0.50 at 1/2…1/8).
 */
export interface NdpiLevel {
  strip: JpegStrip;
  /** 1 for a stored level; 2, 4 or 8 for a synthesised one. */
  scale: number;
  width: number;
  height: number;
}

const SCALES = [1, 2, 4, 8];

/**
 * Every stored level at every scale, deduplicated by size (the cheapest scale wins), largest first:
 * on the test slide 4 stored levels become OpenSlide's 7 (3968 … 62 px wide).
 */
export function planLevels(strips: JpegStrip[]): NdpiLevel[] {
  const bySize = new Map<string, NdpiLevel>();
  for (const strip of strips) {
    for (const scale of SCALES) {
      const L = strip.layout;
      // Only scales that keep a tile's MCU rows whole, as libjpeg's scaled output requires.
      if (L.mcuWidth % scale !== 0 || L.mcuHeight % scale !== 0) continue;
      const width = Math.ceil(L.width / scale);
      const height = Math.ceil(L.height / scale);
      const key = `${width}x${height}`;
      const old = bySize.get(key);
      if (!old || old.scale > scale) bySize.set(key, { strip, scale, width, height });
    }
  }
  return [...bySize.values()].sort((a, b) => b.width - a.width || b.height - a.height);
}

/**
 * Pixels [x, x + w) × [y, y + h) of a level (inside its bounds): read from the stored strip and,
 * for a synthesised level, averaged over s × s boxes (edge boxes over the pixels that exist).
 */
export async function readLevelRect(level: NdpiLevel, x: number, y: number, w: number, h: number, store = true): Promise<RgbImage> {
  const s = level.scale;
  if (s === 1) return level.strip.readRect(x, y, w, h, store);
  const L = level.strip.layout;
  const sx = x * s;
  const sy = y * s;
  const sw = Math.min((x + w) * s, L.width) - sx;
  const sh = Math.min((y + h) * s, L.height) - sy;
  const src = await level.strip.readRect(sx, sy, sw, sh, store);
  const out = Buffer.allocUnsafe(w * h * 3);
  const sums = new Uint32Array(w * 3);
  for (let oy = 0; oy < h; oy++) {
    sums.fill(0);
    const rows = Math.min(s, sh - oy * s);
    for (let dy = 0; dy < rows; dy++) {
      const row = (oy * s + dy) * sw * 3;
      for (let px = 0; px < sw; px++) {
        const o = Math.floor(px / s) * 3;
        const i = row + px * 3;
        sums[o] += src.data[i]!;
        sums[o + 1] += src.data[i + 1]!;
        sums[o + 2] += src.data[i + 2]!;
      }
    }
    for (let ox = 0; ox < w; ox++) {
      const n = rows * Math.min(s, sw - ox * s);
      const o = ox * 3;
      const d = (oy * w + ox) * 3;
      out[d] = Math.round(sums[o]! / n);
      out[d + 1] = Math.round(sums[o + 1]! / n);
      out[d + 2] = Math.round(sums[o + 2]! / n);
    }
  }
  return { width: w, height: h, data: out };
}
