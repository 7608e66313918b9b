import type { RgbImage } from '../readers/types.ts';

/** What a codec needs to know about the block it decodes, taken from the IFD. */
export interface BlockContext {
  /** For messages: file, level and tile, e.g. "CMU-1.svs: level 0 tile (3, 4)". */
  name: string;
  /** Expected decoded size in pixels (full tile, or the strip's rows). */
  width: number;
  height: number;
  compression: number;
  photometric: number;
  samplesPerPixel: number;
  bitsPerSample: number;
  planarConfiguration: number;
  predictor: number;
  sampleFormat: number;
  /** Shared JPEG quantisation/Huffman tables (TIFF tag 347) for abbreviated JPEG streams. */
  jpegTables: Buffer | null;
}

/** A block decoder: compressed bytes in, interleaved 8-bit RGB out (size normally `width × height`). */
export interface Codec {
  /** Name shown to users: 'jpeg', 'jp2k', 'lzw', 'deflate', 'none', 'webp'. */
  name: string;
  decode(data: Buffer, ctx: BlockContext): Promise<RgbImage>;
  /**
   * For codecs libvips decodes (JPEG): the block as a complete stream libvips accepts and that is
   * known to decode to exactly `ctx.width × ctx.height` (throws otherwise), so a reader can decode
   * several blocks in one libvips call (see `decodeMosaic`). Absent for other codecs.
   */
  toLibvipsInput?(data: Buffer, ctx: BlockContext): Buffer;
}
