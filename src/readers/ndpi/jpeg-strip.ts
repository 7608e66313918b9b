import type { ByteSource } from '../../io/byte-source.ts';
import { CorruptSlideError, UnsupportedSlideError } from '../../errors.ts';
import { decodeWithSharp } from '../../codecs/sharp-decode.ts';
import type { RgbImage } from '../types.ts';
import { MAX_JPEG_HEADER, parseJpegHeader, type JpegHeader } from './jpeg-header.ts';
import { assembleJpeg, checkRun, intervalsOf, planRestartLayout, type IntervalRun, type RestartLayout } from './restart-markers.ts';
import type { McuStarts } from './mcu-starts.ts';

/** Counters a caller (test, benchmark) can read to see how much of a level a read touched. */
export interface RestartReadStats {
  /** Restart intervals decoded since open. */
  intervalsDecoded: number;
  /** Sub-JPEGs handed to the decoder. */
  jpegsDecoded: number;
  /** Largest single decode in pixels: bounded by the request, never by the level. */
  largestDecodePixels: number;
  /** Compressed bytes read for pixel data. */
  bytesRead: number;
}

export const newRestartReadStats = (): RestartReadStats => ({ intervalsDecoded: 0, jpegsDecoded: 0, largestDecodePixels: 0, bytesRead: 0 });

/** Where decoded tiles are kept between reads (the shared byte-bounded LRU). */
export interface TileStore {
  get(key: string): RgbImage | undefined;
  set(key: string, tile: RgbImage): void;
}

/** Cap on one sub-JPEG decode; a taller block is split into several decodes. */
const MAX_BLOCK_PIXELS = 8 * 1024 * 1024;
/** A stored JPEG without restart markers is decoded whole only up to this size. */
const MAX_WHOLE_JPEG_PIXELS = 64 * 1024 * 1024;

/** Reads the JPEG header of a strip at `offset`, growing the read until SOS is found. */
export async function readJpegHeader(source: ByteSource, offset: number, length: number, what: string): Promise<JpegHeader> {
  let want = Math.min(length, 4096);
  for (;;) {
    const buf = await source.read(offset, want);
    try {
      return parseJpegHeader(buf, what);
    } catch (err) {
      const truncated = err instanceof CorruptSlideError && /truncated|no SOS/.test(err.message);
      if (!truncated || want >= Math.min(length, MAX_JPEG_HEADER)) throw err;
      want = Math.min(length, MAX_JPEG_HEADER, want * 8);
    }
  }
}

/**
 * One stored JPEG strip (an NDPI level or the macro) read as a grid of restart-interval tiles.
 * Regions decode only the intervals they overlap; decoded tiles go to the shared tile store.
 */
export class JpegStrip {
  readonly layout: RestartLayout;
  private readonly dataEnd: number;

  constructor(
    private readonly source: ByteSource,
    /** e.g. "slide.ndpi: level 0", for messages. */
    readonly what: string,
    private readonly stripOffset: number,
    private readonly stripLength: number,
    readonly header: JpegHeader,
    width: number,
    height: number,
    private readonly starts: McuStarts | null,
    private readonly store: TileStore,
    private readonly cacheKey: string,
    private readonly stats: RestartReadStats,
  ) {
    this.layout = planRestartLayout(header, width, height, what);
    // The entropy data ends before the EOI; a strip without one (truncated writer) ends at its end.
    this.dataEnd = stripOffset + stripLength - 2;
    if (header.restartInterval === 0 && width * height > MAX_WHOLE_JPEG_PIXELS) {
      throw new UnsupportedSlideError(`${what}: ${width} × ${height} JPEG without restart markers is too large to decode whole`);
    }
  }

  /**
   * Pixels [x, x + w) × [y, y + h) of this strip; the rectangle must lie inside the image. `store`
   * false (a one-pass scan): decoded tiles are used for this read only, not kept in the tile store.
   */
  async readRect(x: number, y: number, w: number, h: number, store = true): Promise<RgbImage> {
    const L = this.layout;
    const c0 = Math.floor(x / L.tileWidth);
    const c1 = Math.ceil((x + w) / L.tileWidth);
    const r0 = Math.floor(y / L.tileHeight);
    const r1 = Math.ceil((y + h) / L.tileHeight);
    const tiles = new Map<string, RgbImage>();
    let pending: { row0: number; rows: number; col0: number; col1: number } | null = null;
    const rowBudget = Math.max(1, Math.floor(MAX_BLOCK_PIXELS / (L.tileHeight * Math.max(1, c1 - c0) * L.tileWidth)));
    const flush = async () => {
      if (pending) await this.decodeBlock(pending.row0, pending.row0 + pending.rows, pending.col0, pending.col1, tiles, store);
      pending = null;
    };
    for (let r = r0; r < r1; r++) {
      // The missing columns of this row, as one span: decoding a cached tile again is cheaper than
      // two decodes, and rows of a region are usually all missing or all cached.
      let m0 = -1;
      let m1 = -1;
      for (let c = c0; c < c1; c++) {
        const hit = this.store.get(this.key(r, c));
        if (hit) tiles.set(`${r},${c}`, hit);
        else { if (m0 < 0) m0 = c; m1 = c + 1; }
      }
      const p = pending as { row0: number; rows: number; col0: number; col1: number } | null;
      if (m0 < 0) { await flush(); continue; }
      if (p && p.col0 === m0 && p.col1 === m1 && p.row0 + p.rows === r && p.rows < rowBudget) p.rows++;
      else { await flush(); pending = { row0: r, rows: 1, col0: m0, col1: m1 }; }
    }
    await flush();
    return this.compose(tiles, x, y, w, h, c0, c1, r0, r1);
  }

  private key(r: number, c: number): string {
    return `${this.cacheKey}:${r}:${c}`;
  }

  private async decodeBlock(row0: number, row1: number, col0: number, col1: number, into: Map<string, RgbImage>, store: boolean): Promise<void> {
    const L = this.layout;
    const left = col0 * L.tileWidth;
    const top = row0 * L.tileHeight;
    const width = Math.min(col1 * L.tileWidth, L.width) - left;
    const height = Math.min(row1 * L.tileHeight, L.height) - top;
    let jpeg: Buffer;
    let intervals = 0;
    if (L.restartInterval === 0) {
      jpeg = await this.source.read(this.stripOffset, this.stripLength);
      this.stats.bytesRead += jpeg.length;
      intervals = 1;
      // The SOF of a stored JPEG is trusted only when it agrees with the TIFF tags.
      if (this.header.width !== L.width || this.header.height !== L.height) {
        jpeg = assembleJpeg(this.header, L.width, L.height, [{ data: jpeg.subarray(this.header.bytes.length, jpeg.length - 2), innerStarts: [] }]);
      }
    } else {
      const runs = await this.readRuns(row0, row1, col0, col1);
      for (const run of runs) intervals += run.innerStarts.length + 1;
      jpeg = assembleJpeg(this.header, width, height, runs);
    }
    const img = await decodeWithSharp(jpeg, 'JPEG', `${this.what} rows ${top}..${top + height}`);
    if (img.width !== width || img.height !== height) {
      throw new CorruptSlideError(`${this.what}: decoded ${img.width} × ${img.height} where ${width} × ${height} was expected`);
    }
    this.stats.intervalsDecoded += intervals;
    this.stats.jpegsDecoded++;
    this.stats.largestDecodePixels = Math.max(this.stats.largestDecodePixels, width * height);
    for (let r = row0; r < row1; r++) {
      for (let c = col0; c < col1; c++) {
        const tx = c * L.tileWidth - left;
        const ty = r * L.tileHeight - top;
        const tile = crop(img, tx, ty, Math.min(L.tileWidth, width - tx), Math.min(L.tileHeight, height - ty));
        if (store) this.store.set(this.key(r, c), tile);
        into.set(`${r},${c}`, tile);
      }
    }
  }

  /** The entropy data of tile rows [row0, row1) × columns [col0, col1), one run per tile row. */
  private async readRuns(row0: number, row1: number, col0: number, col1: number): Promise<IntervalRun[]> {
    const L = this.layout;
    const spans = [];
    for (let r = row0; r < row1; r++) spans.push(intervalsOf(L, r, col0, col1));
    const lo = spans[0]!.first;
    const hi = spans[spans.length - 1]!.end;
    const offsets = await this.starts!.range(lo, hi);
    const at = (i: number) => offsets[i - lo]!;
    const runs: IntervalRun[] = [];
    // Each run is read with the 2 bytes before it, so the RST marker that precedes its first
    // interval is checked too. Full-width blocks are one contiguous byte range: read it once.
    const lead = (i: number) => (i > 0 ? 2 : 0);
    const wholeStart = at(lo) - lead(lo);
    const whole = col0 === 0 && col1 === L.tilesAcross ? await this.readBytes(wholeStart, at(hi) - 2 - wholeStart) : null;
    for (const { first, end } of spans) {
      const start = at(first) - lead(first);
      const length = at(end) - 2 - start;
      const data = whole ? whole.subarray(start - wholeStart, start - wholeStart + length) : await this.readBytes(start, length);
      const innerStarts = [];
      for (let i = first + 1; i < end; i++) innerStarts.push(at(i) - start);
      if (first > 0) checkRun({ data, innerStarts: [2] }, first - 1, this.what);
      const run = { data: data.subarray(lead(first)), innerStarts: innerStarts.map((v) => v - lead(first)) };
      checkRun(run, first, this.what);
      runs.push(run);
    }
    return runs;
  }

  private async readBytes(offset: number, length: number): Promise<Buffer> {
    if (length <= 0) throw new CorruptSlideError(`${this.what}: empty restart interval at offset ${offset}`);
    const buf = await this.source.read(offset, length);
    this.stats.bytesRead += length;
    return buf;
  }

  private compose(tiles: Map<string, RgbImage>, x: number, y: number, w: number, h: number, c0: number, c1: number, r0: number, r1: number): RgbImage {
    const L = this.layout;
    const out = Buffer.allocUnsafe(w * h * 3);
    for (let r = r0; r < r1; r++) {
      for (let c = c0; c < c1; c++) {
        const tile = tiles.get(`${r},${c}`)!;
        const tx = c * L.tileWidth;
        const ty = r * L.tileHeight;
        const sx0 = Math.max(x, tx);
        const sx1 = Math.min(x + w, tx + tile.width);
        const rowBytes = (sx1 - sx0) * 3;
        for (let yy = Math.max(y, ty); yy < Math.min(y + h, ty + tile.height); yy++) {
          const src = ((yy - ty) * tile.width + (sx0 - tx)) * 3;
          tile.data.copy(out, ((yy - y) * w + (sx0 - x)) * 3, src, src + rowBytes);
        }
      }
    }
    return { width: w, height: h, data: out };
  }
}

/** A copy of a sub-rectangle (tiles must not pin the block buffer they came from). */
export function crop(img: RgbImage, x: number, y: number, w: number, h: number): RgbImage {
  const data = Buffer.allocUnsafe(w * h * 3);
  for (let yy = 0; yy < h; yy++) {
    const src = ((y + yy) * img.width + x) * 3;
    img.data.copy(data, yy * w * 3, src, src + w * 3);
  }
  return { width: w, height: h, data };
}
