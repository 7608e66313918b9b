import type { ByteSource } from '../io/byte-source.ts';

/** Interleaved 8-bit RGB pixels, row-major, `width * height * 3` bytes. */
export interface RgbImage {
  width: number;
  height: number;
  data: Buffer;
}

/** One pyramid level as the file stores it (or as a reader synthesises it). */
export interface LevelInfo {
  /** Level size in its own pixels. */
  width: number;
  height: number;
  /** Level-0 pixels per level pixel, OpenSlide's definition (mean of x and y ratios). */
  downsample: number;
  /** The file's native tile grid at this level; for stripped or single-JPEG levels, the natural read unit. */
  tileWidth: number;
  tileHeight: number;
  /** Codec name as reported to users: 'jpeg', 'jp2k', 'lzw', 'deflate', 'none', 'webp', … */
  compression: string;
}

export interface AssociatedImageInfo {
  /** 'label', 'macro', 'thumbnail', or a vendor's own name. */
  name: string;
  width: number;
  height: number;
}

/** Physical pixel size in micrometres per level-0 pixel. */
export interface Mpp {
  x: number;
  y: number;
}

export interface ReadOptions {
  signal?: AbortSignal;
  /**
   * false for a one-pass read (an analysis scan): tiles already cached are used, tiles decoded for
   * this read are not kept. A scan meets each stored tile about once, so caching it would only hold
   * memory that grows with the slide (up to the cache's bound) and evict tiles a viewer is using.
   * Default true.
   */
  cache?: boolean;
}

/**
 * An opened whole-slide image. Coordinates follow OpenSlide: `level0X`, `level0Y` in the level-0
 * frame; `width`, `height` in pixels of the requested level. Pixels outside the slide are white.
 * A reader that meets a structural error stays failed and rethrows it on later calls; `close()`
 * always works.
 */
export interface Slide {
  /** Stable lowercase format id from the registry: 'aperio', 'generic-tiff', 'ome-tiff', 'ndpi', 'dicom'. */
  readonly format: string;
  readonly vendor: string;
  /** File name (for messages). */
  readonly name: string;
  /** Levels, largest first. */
  readonly levels: readonly LevelInfo[];
  /** Level-0 size. */
  readonly dimensions: { readonly width: number; readonly height: number };
  /** null when the file does not say (see `warnings`). */
  readonly mpp: Mpp | null;
  readonly objectivePower: number | null;
  /** Vendor metadata as flat key/value strings (OpenSlide-style names where one exists). */
  readonly properties: Readonly<Record<string, string>>;
  readonly associatedImages: readonly AssociatedImageInfo[];
  /** Fallbacks and quirks the reader applied, for `lamina info`. */
  readonly warnings: readonly string[];
  readRegion(level0X: number, level0Y: number, level: number, width: number, height: number, options?: ReadOptions): Promise<RgbImage>;
  readAssociatedImage(name: string): Promise<RgbImage>;
  close(): Promise<void>;
}

/** What every format's `detect` sees: the file parsed once at its head. */
export interface SlideProbe {
  /** Path as given (a file, or a folder for DICOM series). */
  path: string;
  name: string;
  isDirectory: boolean;
  /** For a file: the opened source and its first bytes (up to 64 KiB). */
  source: ByteSource | null;
  head: Buffer;
}

export type Detection = { ok: true } | { ok: false; reason: string };

/** One format module's table entry, after OpenSlide's `_openslide_format`. */
export interface SlideFormat {
  /** Stable lowercase id used in logs, the API and the registry. */
  name: string;
  vendor: string;
  detect(probe: SlideProbe): Promise<Detection> | Detection;
  open(probe: SlideProbe): Promise<Slide>;
}

export const ok = (): Detection => ({ ok: true });
export const no = (reason: string): Detection => ({ ok: false, reason });
