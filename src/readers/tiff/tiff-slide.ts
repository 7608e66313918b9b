import type { ByteSource } from '../../io/byte-source.ts';
import { sharedTileCache, newCacheKey, type TileCache } from '../../io/tile-cache.ts';
import { CorruptSlideError, NotFoundError } from '../../errors.ts';
import type { AssociatedImageInfo, LevelInfo, Mpp, ReadOptions, RgbImage, Slide } from '../types.ts';
import { checkRegionRequest } from '../region-request.ts';
import type { TiffIfd } from './tiff-directory.ts';
import { TiffImage } from './tiff-image.ts';
import { SlideState } from '../slide-state.ts';

/** Largest associated image (label, macro, thumbnail) decoded whole: 64 Mpx, 192 MiB of RGB. */
const MAX_ASSOCIATED_PIXELS = 1 << 26;

/** What a TIFF-family format module decides about a file; `createTiffSlide` does the reading. */
export interface TiffSlideSpec {
  format: string;
  vendor: string;
  source: ByteSource;
  /** Pyramid levels, largest first. */
  levels: TiffIfd[];
  mpp: Mpp | null;
  objectivePower: number | null;
  properties: Record<string, string>;
  associated: Array<{ name: string; ifd: TiffIfd }>;
  warnings: string[];
  cache?: TileCache;
}

/**
 * A Slide over TIFF images: levels read tile by tile through the shared cache. Errors are sticky
 * (OpenSlide's error state): after a CorruptSlideError every later read rethrows it; `close()`
 * always works.
 */
export function createTiffSlide(spec: TiffSlideSpec): Slide {
  const cache = spec.cache ?? sharedTileCache;
  const key = newCacheKey();
  const { source } = spec;
  const base = spec.levels[0]!;
  const images = spec.levels.map((ifd, i) => new TiffImage(source, ifd, `level ${i}`, cache, `${key}/L${i}`));
  const levels: LevelInfo[] = images.map((img) => ({
    width: img.width,
    height: img.height,
    // OpenSlide's definition: mean of the two axis ratios
    downsample: (base.width / img.width + base.height / img.height) / 2,
    tileWidth: img.ifd.blockWidth,
    tileHeight: img.ifd.blockHeight,
    compression: img.compression,
  }));
  const associated = new Map<string, TiffIfd>(spec.associated.map((a) => [a.name, a.ifd]));
  const associatedImages: AssociatedImageInfo[] = spec.associated.map((a) => ({ name: a.name, width: a.ifd.width, height: a.ifd.height }));
  const state = new SlideState(source.name);
  const guard = <T>(fn: () => Promise<T>): Promise<T> => state.guard(fn);

  return {
    format: spec.format,
    vendor: spec.vendor,
    name: source.name,
    levels,
    dimensions: { width: base.width, height: base.height },
    mpp: spec.mpp,
    objectivePower: spec.objectivePower,
    properties: spec.properties,
    associatedImages,
    warnings: spec.warnings,

    readRegion(level0X: number, level0Y: number, level: number, width: number, height: number, options?: ReadOptions): Promise<RgbImage> {
      return guard(async () => {
        const { levelX, levelY } = checkRegionRequest(levels, level0X, level0Y, level, width, height);
        const data = await images[level]!.read(levelX, levelY, width, height, options?.signal, options?.cache !== false);
        return { width, height, data };
      });
    },

    readAssociatedImage(name: string): Promise<RgbImage> {
      return guard(async () => {
        const ifd = associated.get(name);
        if (!ifd) throw new NotFoundError(`${source.name}: no associated image '${name}' (has: ${[...associated.keys()].join(', ') || 'none'})`);
        if (ifd.width * ifd.height > MAX_ASSOCIATED_PIXELS) {
          throw new CorruptSlideError(`${source.name}: associated image '${name}' claims ${ifd.width} × ${ifd.height} pixels (limit ${MAX_ASSOCIATED_PIXELS})`);
        }
        const image = new TiffImage(source, ifd, name, cache, `${key}/A:${name}`);
        return { width: ifd.width, height: ifd.height, data: await image.read(0, 0, ifd.width, ifd.height) };
      });
    },

    async close(): Promise<void> {
      if (!state.markClosed()) return;
      cache.evictPrefix(`${key}/`);
      await source.close();
    },
  };
}
