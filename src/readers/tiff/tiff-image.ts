import type { ByteSource } from '../../io/byte-source.ts';
import type { TileCache } from '../../io/tile-cache.ts';
import { CorruptSlideError, LaminaError, CancelledError } from '../../errors.ts';
import { checkCompression, decodeBlock, compressionName, getCodec, type BlockContext } from '../../codecs/registry.ts';
import { decodeMosaic } from '../../codecs/sharp-decode.ts';
import type { RgbImage } from '../types.ts';
import type { TiffIfd } from './tiff-directory.ts';

/** Largest tile or strip decoded in one piece: 16 Mpx (48 MiB of RGB); real tiles are ≤ 4096². */
export const MAX_BLOCK_PIXELS = 1 << 24;

/** Most tiles one region decodes in a single libvips call (4 × 4 tiles of 512² is 12 MiB of RGB). */
const MAX_MOSAIC_TILES = 16;

/** Tiles decoded at once for one region: enough to keep libuv's 4 threads busy, bounded in memory. */
const PARALLEL_TILES = 6;

/**
 * One TIFF image (a pyramid level or an associated image) read block by block — tiles, or strips as
 * full-width blocks — through the shared tile cache.
 */
export class TiffImage {
  readonly compression: string;

  constructor(
    private readonly source: ByteSource,
    readonly ifd: TiffIfd,
    /** 'level 2', 'label', … for messages. */
    readonly label: string,
    private readonly cache: TileCache,
    private readonly cacheKey: string,
  ) {
    checkCompression(ifd.compression, `${source.name}: ${label}`);
    if (ifd.blockWidth * ifd.blockHeight > MAX_BLOCK_PIXELS) {
      throw new CorruptSlideError(`${source.name}: ${label}: ${ifd.isTiled ? 'tile' : 'strip'} of ${ifd.blockWidth} × ${ifd.blockHeight} pixels is too large to decode at once (limit ${MAX_BLOCK_PIXELS})`);
    }
    this.compression = compressionName(ifd.compression);
  }

  get width(): number { return this.ifd.width; }
  get height(): number { return this.ifd.height; }

  /** Decoded block `(bx, by)`, or null when the file leaves it out (reads as white); `store` false: not kept in the cache. */
  readBlock(bx: number, by: number, store = true): Promise<RgbImage | null> {
    const index = by * this.ifd.blocksAcross + bx;
    const hit = this.cache.get(`${this.cacheKey}/${index}`);
    return hit ? Promise.resolve(hit) : this.loadBlock(index, bx, by, store);
  }

  private async loadBlock(index: number, bx: number, by: number, store: boolean): Promise<RgbImage | null> {
    const ifd = this.ifd;
    const where = `${this.source.name}: ${this.label} ${ifd.isTiled ? 'tile' : 'strip'} (${bx}, ${by})`;
    const loc = await ifd.blocks.location(index);
    if (loc.length === 0) return null;
    return this.cache.getOrLoad(`${this.cacheKey}/${index}`, async () => {
      const data = await this.source.read(loc.offset, loc.length);
      try {
        return await decodeBlock(data, this.blockContext(bx, by, where));
      } catch (err) {
        if (err instanceof LaminaError) throw err;
        throw new CorruptSlideError(`${where}: cannot decode: ${(err as Error).message}`, { cause: err });
      }
    }, store);
  }

  private blockContext(bx: number, by: number, where: string): BlockContext {
    const ifd = this.ifd;
    return {
      name: where,
      width: ifd.blockWidth,
      height: ifd.isTiled ? ifd.blockHeight : Math.min(ifd.blockHeight, ifd.height - by * ifd.blockHeight),
      compression: ifd.compression,
      photometric: ifd.photometric,
      samplesPerPixel: ifd.samplesPerPixel,
      bitsPerSample: ifd.bitsPerSample,
      planarConfiguration: ifd.planarConfiguration,
      predictor: ifd.predictor,
      sampleFormat: ifd.sampleFormat,
      jpegTables: ifd.jpegTables,
    };
  }

  /**
   * Decodes the tiles [bx0, bx0+across) × [by0, by0+down) in one libvips call and returns the clip
   * rectangle of the mosaic, without caching the tiles (see `read` for when). Returns null — and the
   * caller decodes tile by tile, naming any broken tile — when the codec is not one libvips
   * decodes, a tile is absent, or libvips fails.
   */
  private async decodeMosaicClip(bx0: number, by0: number, across: number, down: number, clip: [number, number, number, number]): Promise<RgbImage | null> {
    const ifd = this.ifd;
    const codec = await getCodec(ifd.compression);
    if (!codec.toLibvipsInput) return null;
    const cells = Array.from({ length: across * down }, (_, i) => [bx0 + (i % across), by0 + Math.floor(i / across)] as const);
    const locations = await Promise.all(cells.map(([bx, by]) => ifd.blocks.location(by * ifd.blocksAcross + bx)));
    if (locations.some((l) => l.length === 0)) return null;
    const data = await Promise.all(locations.map((l) => this.source.read(l.offset, l.length)));
    let streams: Buffer[];
    try {
      streams = data.map((d, i) => codec.toLibvipsInput!(d, this.blockContext(cells[i]![0], cells[i]![1], `${this.source.name}: ${this.label}`)));
    } catch {
      return null;
    }
    const [x0, y0, x1, y1] = clip;
    return decodeMosaic(streams, across, { left: x0 - bx0 * ifd.blockWidth, top: y0 - by0 * ifd.blockHeight, width: x1 - x0, height: y1 - y0 });
  }

  /**
   * The image's pixels in `[x, x+w) × [y, y+h)` (image coordinates, may extend past the image) as a
   * new `w × h` RGB buffer, white outside the image. Each block is decoded once and its rows copied.
   * `useCache` false (a one-pass scan): blocks decoded here are not kept in the tile cache.
   */
  async read(x: number, y: number, w: number, h: number, signal?: AbortSignal, useCache = true): Promise<Buffer> {
    if (signal?.aborted) throw new CancelledError('region read cancelled');
    const ifd = this.ifd;
    const x0 = Math.max(0, x), y0 = Math.max(0, y);
    const x1 = Math.min(ifd.width, x + w), y1 = Math.min(ifd.height, y + h);
    const white = () => Buffer.alloc(w * h * 3, 255);
    if (x0 >= x1 || y0 >= y1) return white();
    const bw = ifd.blockWidth, bh = ifd.blockHeight;
    const bx0 = Math.floor(x0 / bw), bx1 = Math.floor((x1 - 1) / bw);
    const by0 = Math.floor(y0 / bh), by1 = Math.floor((y1 - 1) / bh);
    const across = bx1 - bx0 + 1;
    const total = across * (by1 - by0 + 1);
    if (ifd.isTiled && total >= 2 && total <= MAX_MOSAIC_TILES && (!useCache || ifd.width * ifd.height * 3 > this.cache.maxBytes)) {
      // A level larger than the whole cache is read at random, so its tiles are rarely met again:
      // decode a multi-tile read's uncached tiles in one libvips call and skip the cache (measured
      // on a 4.3-Gpx slide: 35.7 vs 24.8 MPix per CPU-second tile by tile, and 17.3 when the mosaic
      // is also split into the cache). Levels that fit in the cache keep the per-tile cached path,
      // unless the caller scans (`useCache` false), where nothing is kept either way.
      let missing = 0;
      for (let by = by0; by <= by1; by++) {
        for (let bx = bx0; bx <= bx1; bx++) if (!this.cache.has(`${this.cacheKey}/${by * ifd.blocksAcross + bx}`)) missing++;
      }
      const clip = missing >= 2 ? await this.decodeMosaicClip(bx0, by0, across, by1 - by0 + 1, [x0, y0, x1, y1]) : null;
      if (clip) {
        // a region wholly inside the image is the clip itself: no fill, no copy
        if (clip.width === w && clip.height === h) return clip.data;
        const out = white();
        copyBlock(clip, x0, y0, x0, y0, x1, y1, x, y, w, out);
        return out;
      }
    }
    const out = white();
    let next = 0;
    let failed = false;
    const worker = async () => {
      // stop handing out tiles once one has failed: the read is lost and the slide is now failed
      while (next < total && !failed) {
        if (signal?.aborted) throw new CancelledError('region read cancelled');
        const i = next++;
        const bx = bx0 + (i % across), by = by0 + Math.floor(i / across);
        try {
          const block = await this.readBlock(bx, by, useCache);
          if (block) copyBlock(block, bx * bw, by * bh, x0, y0, x1, y1, x, y, w, out);
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_TILES, total) }, worker));
    return out;
  }
}

/**
 * Copies the part of `block` (placed at image position bxPx, byPx) that falls inside the clip
 * rectangle [x0, x1) × [y0, y1) into `out` (a region of width `w` whose top-left is image (x, y)).
 * A decoded block smaller than the grid cell (a short last strip) copies what it has.
 */
function copyBlock(block: RgbImage, bxPx: number, byPx: number, x0: number, y0: number, x1: number, y1: number, x: number, y: number, w: number, out: Buffer): void {
  const cx0 = Math.max(x0, bxPx), cx1 = Math.min(x1, bxPx + block.width);
  const cy0 = Math.max(y0, byPx), cy1 = Math.min(y1, byPx + block.height);
  if (cx0 >= cx1 || cy0 >= cy1) return;
  const rowBytes = (cx1 - cx0) * 3;
  const src = block.data;
  if (cx0 === bxPx && cx1 - cx0 === block.width && cx0 === x && cx1 - cx0 === w) {
    // whole rows on both sides: one contiguous copy (grid-aligned reads of tile width)
    src.copy(out, ((cy0 - y) * w) * 3, (cy0 - byPx) * block.width * 3, (cy1 - byPx) * block.width * 3);
    return;
  }
  for (let row = cy0; row < cy1; row++) {
    const s = ((row - byPx) * block.width + (cx0 - bxPx)) * 3;
    src.copy(out, ((row - y) * w + (cx0 - x)) * 3, s, s + rowBytes);
  }
}
