import { InvalidParameterError, checkInt, invalidParameter } from '../errors.ts';
import type { LevelInfo } from './types.ts';

/** Largest region side in pixels one `readRegion` call returns. */
export const MAX_REGION_SIDE = 65536;
/** Largest region in pixels: 16384 × 16384 RGB is 768 MiB, the most one call may allocate. */
export const MAX_REGION_PIXELS = 16384 * 16384;
/** Level-0 coordinates beyond ±2⁴⁰ cannot address any real slide and would lose integer precision. */
const MAX_COORD = 2 ** 40;

/**
 * Checks a readRegion request (OpenSlide's convention: `level0X`, `level0Y` in level-0 pixels, may be
 * negative or past the slide; `width`, `height` in level pixels) before anything is allocated.
 * Returns the region's top-left corner in the level's own pixels.
 */
export function checkRegionRequest(levels: readonly LevelInfo[], level0X: number, level0Y: number, level: number, width: number, height: number): { levelX: number; levelY: number } {
  checkInt('level', level, 0, levels.length - 1);
  checkInt('level0X', level0X, -MAX_COORD, MAX_COORD);
  checkInt('level0Y', level0Y, -MAX_COORD, MAX_COORD);
  checkInt('width', width, 1, MAX_REGION_SIDE);
  checkInt('height', height, 1, MAX_REGION_SIDE);
  if (width * height > MAX_REGION_PIXELS) {
    throw new InvalidParameterError(`Region ${width} × ${height} is too large: at most ${MAX_REGION_PIXELS} pixels (16384 × 16384) per read`);
  }
  const ds = levels[level]!.downsample;
  if (!(ds > 0) || !Number.isFinite(ds)) throw invalidParameter('level', 'level with a finite downsample', level);
  // OpenSlide divides by the downsample and lets cairo interpolate the fraction; we take the nearest
  // level pixel, which also makes level0X = round(tileX · tileWidth · downsample) land on the grid.
  return { levelX: Math.round(level0X / ds), levelY: Math.round(level0Y / ds) };
}
