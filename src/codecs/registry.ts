import { UnsupportedSlideError } from '../errors.ts';
import type { RgbImage } from '../readers/types.ts';
import type { BlockContext, Codec } from './types.ts';

export type { BlockContext, Codec } from './types.ts';

/**
 * Codecs by TIFF compression id, loaded on first use so `lamina info` never loads OpenJPEG.
 * End users may override or add an entry with `registerCodec` (after geotiff's `addDecoder`).
 */
const loaders = new Map<number, () => Promise<Codec>>([
  [1, async () => (await import('./none.ts')).none],
  [5, async () => (await import('./lzw.ts')).lzw],
  [7, async () => (await import('./jpeg.ts')).jpeg],
  [8, async () => (await import('./deflate.ts')).deflate],
  [32946, async () => (await import('./deflate.ts')).deflate],
  [33003, async () => (await import('./jp2k.ts')).jp2k],
  [33005, async () => (await import('./jp2k.ts')).jp2k],
  [50001, async () => (await import('./webp.ts')).webp],
]);

/** Names of compression ids, for `lamina info` and for messages about ones we cannot decode. */
const NAMES: Record<number, string> = {
  1: 'none', 2: 'CCITT modified Huffman RLE', 3: 'CCITT Group 3 fax', 4: 'CCITT Group 4 fax', 5: 'lzw',
  6: 'old-style JPEG', 7: 'jpeg', 8: 'deflate', 9: 'JBIG', 32773: 'PackBits', 32946: 'deflate',
  33003: 'jp2k', 33005: 'jp2k', 34661: 'JBIG', 34676: 'SGI LogLuv', 34712: 'JPEG 2000 (generic, Leica/OME)',
  34887: 'LERC', 34925: 'LZMA', 34926: 'Zstandard (old id)', 34927: 'WebP (old id)', 50000: 'Zstandard',
  50001: 'webp', 50002: 'JPEG XL', 52546: 'JPEG XL (DNG)',
};

/** User-facing codec name for a TIFF compression id ('jpeg', 'jp2k', …, or `compression <id>`). */
export function compressionName(id: number): string {
  return NAMES[id] ?? `compression ${id}`;
}

export function isSupportedCompression(id: number): boolean {
  return loaders.has(id);
}

/** Adds or replaces the codec for a TIFF compression id. */
export function registerCodec(id: number, load: () => Promise<Codec>, name?: string): void {
  loaders.set(id, load);
  if (name) NAMES[id] = name;
}

/** Throws UnsupportedSlideError naming the compression when no codec handles it. */
export function checkCompression(id: number, where: string): void {
  if (!loaders.has(id)) {
    throw new UnsupportedSlideError(`${where}: Unsupported TIFF compression: ${id}${NAMES[id] ? ` (${NAMES[id]})` : ''}`);
  }
}

const loaded = new Map<number, Promise<Codec>>();

/** The codec for a compression id, loaded once. */
export function getCodec(id: number, where = 'TIFF'): Promise<Codec> {
  checkCompression(id, where);
  let codec = loaded.get(id);
  if (!codec) {
    codec = loaders.get(id)!();
    loaded.set(id, codec);
  }
  return codec;
}

/** Decodes one tile or strip to RGB with the codec registered for `ctx.compression`. */
export async function decodeBlock(data: Buffer, ctx: BlockContext): Promise<RgbImage> {
  const codec = await getCodec(ctx.compression, ctx.name);
  return codec.decode(data, ctx);
}
