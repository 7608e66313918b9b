/**
 * An in-memory `Slide` for tests of the analysis stages: pixels come from a function of level-0
 * coordinates; levels are box-sampled by taking the pixel at the level pixel's level-0 origin.
 */
import type { LevelInfo, RgbImage, Slide } from '../../src/readers/types.ts';

export type PixelFn = (x: number, y: number) => [number, number, number];

export interface MemorySlideOptions {
  width: number;
  height: number;
  pixel: PixelFn;
  /** Level downsamples. @defaultValue [1, 4] */
  downsamples?: number[];
  tileSize?: number;
  mpp?: number | null;
  objectivePower?: number | null;
  name?: string;
}

/** Builds the slide; `reads` counts readRegion calls. */
export function memorySlide(o: MemorySlideOptions): Slide & { reads: number } {
  const downsamples = o.downsamples ?? [1, 4];
  const levels: LevelInfo[] = downsamples.map((ds) => ({
    width: Math.ceil(o.width / ds), height: Math.ceil(o.height / ds), downsample: ds,
    tileWidth: o.tileSize ?? 256, tileHeight: o.tileSize ?? 256, compression: 'none',
  }));
  const slide = {
    format: 'memory', vendor: 'test', name: o.name ?? 'memory-slide', levels,
    dimensions: { width: o.width, height: o.height },
    mpp: o.mpp === undefined ? { x: 0.25, y: 0.25 } : o.mpp === null ? null : { x: o.mpp, y: o.mpp },
    objectivePower: o.objectivePower === undefined ? 40 : o.objectivePower,
    properties: {}, associatedImages: [], warnings: [], reads: 0,
    async readRegion(x0: number, y0: number, level: number, w: number, h: number): Promise<RgbImage> {
      slide.reads++;
      const ds = downsamples[level]!;
      const data = Buffer.alloc(w * h * 3, 255);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const lx = x0 + x * ds, ly = y0 + y * ds;
          if (lx >= o.width || ly >= o.height) continue;
          const [r, g, b] = o.pixel(lx, ly);
          const p = (y * w + x) * 3;
          data[p] = r; data[p + 1] = g; data[p + 2] = b;
        }
      }
      return { width: w, height: h, data };
    },
    async readAssociatedImage(): Promise<RgbImage> { throw new Error('none'); },
    async close() {},
  };
  return slide;
}

/** Pink tissue with a little deterministic texture. */
export function tissueColour(x: number, y: number): [number, number, number] {
  const t = ((x * 7 + y * 13) % 17) - 8;
  return [200 + t, 110 + t, 170 + t];
}

export const WHITE: [number, number, number] = [245, 245, 245];
