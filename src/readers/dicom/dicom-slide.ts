import type { ByteSource } from '../../io/byte-source.ts';
import type { TileCache } from '../../io/tile-cache.ts';
import { CancelledError, CorruptSlideError, NotFoundError } from '../../errors.ts';
import { checkRegionRequest } from '../region-request.ts';
import type { LevelInfo, Mpp, ReadOptions, RgbImage, Slide } from '../types.ts';
import { codecName, type DicomImage } from './dicom-image.ts';
import { SlideState } from '../slide-state.ts';

/** An opened DICOM slide; `framesDecoded` counts frames decoded since open (all levels). */
export type DicomSlide = Slide & { readonly framesDecoded: number };

export interface DicomSlideSpec {
  name: string;
  /** Levels, largest first. */
  images: DicomImage[];
  mpp: Mpp | null;
  objectivePower: number | null;
  properties: Record<string, string>;
  associated: Array<{ name: string; image: DicomImage }>;
  warnings: string[];
  cache: TileCache;
  cacheKey: string;
  sources: ByteSource[];
}

/** Largest associated image assembled whole (64 Mpx). */
const MAX_ASSOCIATED_PIXELS = 1 << 26;

/** The Slide over a DICOM series; errors are sticky as in every Lamina reader, `close()` always works. */
export function createDicomSlide(spec: DicomSlideSpec): DicomSlide {
  const { images, name } = spec;
  const base = images[0]!;
  const levels: LevelInfo[] = images.map((img) => ({
    width: img.width,
    height: img.height,
    downsample: (base.width / img.width + base.height / img.height) / 2,
    tileWidth: img.tileWidth,
    tileHeight: img.tileHeight,
    compression: codecName(img.inst.transferSyntax),
  }));
  const state = new SlideState(name);
  const guard = <T>(fn: () => Promise<T>): Promise<T> => state.guard(fn);
  const properties: Record<string, string> = { ...spec.properties, 'openslide.vendor': 'dicom' };
  if (spec.mpp) {
    properties['openslide.mpp-x'] = String(spec.mpp.x);
    properties['openslide.mpp-y'] = String(spec.mpp.y);
  }
  if (spec.objectivePower !== null) properties['openslide.objective-power'] = String(spec.objectivePower);

  return {
    format: 'dicom',
    vendor: 'dicom',
    name,
    levels,
    dimensions: { width: base.width, height: base.height },
    mpp: spec.mpp,
    objectivePower: spec.objectivePower,
    properties,
    associatedImages: spec.associated.map((a) => ({ name: a.name, width: a.image.width, height: a.image.height })),
    warnings: spec.warnings,
    get framesDecoded() {
      return [...images, ...spec.associated.map((a) => a.image)].reduce((n, img) => n + img.framesDecoded, 0);
    },

    readRegion(level0X: number, level0Y: number, level: number, width: number, height: number, options?: ReadOptions): Promise<RgbImage> {
      return guard(async () => {
        const { levelX, levelY } = checkRegionRequest(levels, level0X, level0Y, level, width, height);
        const img = images[level]!;
        const data = Buffer.alloc(width * height * 3, 255);
        const x0 = Math.max(0, levelX);
        const y0 = Math.max(0, levelY);
        const x1 = Math.min(img.width, levelX + width);
        const y1 = Math.min(img.height, levelY + height);
        if (options?.signal?.aborted) throw new CancelledError(`${name}: read cancelled`);
        if (x1 > x0 && y1 > y0) await img.paint(x0, y0, x1 - x0, y1 - y0, data, width, x0 - levelX, y0 - levelY, options?.cache !== false);
        return { width, height, data };
      });
    },

    readAssociatedImage(which: string): Promise<RgbImage> {
      return guard(async () => {
        const a = spec.associated.find((x) => x.name === which);
        if (!a) throw new NotFoundError(`${name}: no associated image '${which}' (has: ${spec.associated.map((x) => x.name).join(', ') || 'none'})`);
        const { width, height } = a.image;
        if (width * height > MAX_ASSOCIATED_PIXELS) throw new CorruptSlideError(`${name}: associated image '${which}' claims ${width} × ${height} pixels`);
        const data = Buffer.alloc(width * height * 3, 255);
        await a.image.paint(0, 0, width, height, data, width, 0, 0);
        return { width, height, data };
      });
    },

    async close(): Promise<void> {
      if (!state.markClosed()) return;
      spec.cache.evictPrefix(`${spec.cacheKey}/`);
      for (const s of spec.sources) await s.close().catch(() => {});
    },
  };
}
