import type { ByteSource } from '../../io/byte-source.ts';
import type { TileCache } from '../../io/tile-cache.ts';
import { CancelledError, CorruptSlideError, NotFoundError } from '../../errors.ts';
import { checkRegionRequest } from '../region-request.ts';
import type { AssociatedImageInfo, LevelInfo, Mpp, ReadOptions, RgbImage } from '../types.ts';
import type { RestartReadStats } from './jpeg-strip.ts';
import { readLevelRect, type NdpiLevel } from './ndpi-levels.ts';
import type { NdpiSlide } from './ndpi.ts';
import { SlideState } from '../slide-state.ts';

/** An associated image (macro, map) and how to read it. */
export interface NdpiAssociated extends AssociatedImageInfo {
  read(): Promise<RgbImage>;
}

/** Largest associated image decoded whole (64 Mpx). */
const MAX_ASSOCIATED_PIXELS = 1 << 26;

export interface NdpiSlideSpec {
  source: ByteSource;
  levels: NdpiLevel[];
  mpp: Mpp | null;
  objectivePower: number | null;
  properties: Record<string, string>;
  associated: NdpiAssociated[];
  warnings: string[];
  stats: RestartReadStats;
  cache: TileCache;
  cacheKey: string;
}

/**
 * The Slide over planned NDPI levels. Errors are sticky as in every Lamina reader: after a
 * CorruptSlideError each later read rethrows it; `close()` always works.
 */
export function createNdpiSlide(spec: NdpiSlideSpec): NdpiSlide {
  const { source, levels: planned } = spec;
  const base = planned[0]!;
  const levels: LevelInfo[] = planned.map((l) => ({
    width: l.width,
    height: l.height,
    downsample: (base.width / l.width + base.height / l.height) / 2,
    tileWidth: Math.ceil(l.strip.layout.tileWidth / l.scale),
    tileHeight: Math.ceil(l.strip.layout.tileHeight / l.scale),
    compression: 'jpeg',
  }));
  const state = new SlideState(source.name);
  const guard = <T>(fn: () => Promise<T>): Promise<T> => state.guard(fn);
  const properties: Record<string, string> = { ...spec.properties, 'openslide.vendor': 'hamamatsu' };
  if (spec.mpp) {
    properties['openslide.mpp-x'] = String(spec.mpp.x);
    properties['openslide.mpp-y'] = String(spec.mpp.y);
  }
  if (spec.objectivePower !== null) properties['openslide.objective-power'] = String(spec.objectivePower);

  return {
    format: 'ndpi',
    vendor: 'hamamatsu',
    name: source.name,
    levels,
    dimensions: { width: base.width, height: base.height },
    mpp: spec.mpp,
    objectivePower: spec.objectivePower,
    properties,
    associatedImages: spec.associated.map(({ name, width, height }) => ({ name, width, height })),
    warnings: spec.warnings,
    stats: spec.stats,

    readRegion(level0X: number, level0Y: number, level: number, width: number, height: number, options?: ReadOptions): Promise<RgbImage> {
      return guard(async () => {
        const { levelX, levelY } = checkRegionRequest(levels, level0X, level0Y, level, width, height);
        const L = planned[level]!;
        const data = Buffer.alloc(width * height * 3, 255);
        const x0 = Math.max(0, levelX);
        const y0 = Math.max(0, levelY);
        const x1 = Math.min(L.width, levelX + width);
        const y1 = Math.min(L.height, levelY + height);
        if (x1 > x0 && y1 > y0) {
          if (options?.signal?.aborted) throw new CancelledError(`${source.name}: read cancelled`);
          const part = await readLevelRect(L, x0, y0, x1 - x0, y1 - y0, options?.cache !== false);
          const rowBytes = part.width * 3;
          for (let y = 0; y < part.height; y++) {
            part.data.copy(data, ((y0 - levelY + y) * width + (x0 - levelX)) * 3, y * rowBytes, (y + 1) * rowBytes);
          }
        }
        return { width, height, data };
      });
    },

    readAssociatedImage(name: string): Promise<RgbImage> {
      return guard(async () => {
        const a = spec.associated.find((x) => x.name === name);
        if (!a) throw new NotFoundError(`${source.name}: no associated image '${name}' (has: ${spec.associated.map((x) => x.name).join(', ') || 'none'})`);
        if (!(a.width >= 1 && a.height >= 1 && a.width * a.height <= MAX_ASSOCIATED_PIXELS)) {
          throw new CorruptSlideError(`${source.name}: associated image '${name}' claims ${a.width} × ${a.height} pixels (limit ${MAX_ASSOCIATED_PIXELS})`);
        }
        return a.read();
      });
    },

    async close(): Promise<void> {
      if (!state.markClosed()) return;
      spec.cache.evictPrefix(`${spec.cacheKey}/`);
      await source.close();
    },
  };
}
