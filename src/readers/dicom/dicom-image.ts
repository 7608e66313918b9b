import type { TileCache } from '../../io/tile-cache.ts';
import { CorruptSlideError, UnsupportedSlideError } from '../../errors.ts';
import { decodeWithSharp } from '../../codecs/sharp-decode.ts';
import type { RgbImage } from '../types.ts';
import type { DicomInstance } from './dicom-header.ts';
import { FrameIndex, isNative } from './dicom-frames.ts';

const JPEG = new Set(['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51']);
const JPEG2000 = new Set(['1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.202', '1.2.840.10008.1.2.4.203']);
const NAMES: Record<string, string> = {
  '1.2.840.10008.1.2.4.57': 'JPEG lossless', '1.2.840.10008.1.2.4.70': 'JPEG lossless SV1', '1.2.840.10008.1.2.4.80': 'JPEG-LS lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS near-lossless', '1.2.840.10008.1.2.5': 'RLE lossless', '1.2.840.10008.1.2.2': 'explicit VR big endian',
  '1.2.840.10008.1.2.1.99': 'deflated explicit VR little endian', '1.2.840.10008.1.2.4.110': 'JPEG XL',
};

/** User-facing codec name of a transfer syntax, as in `lamina info`. */
export function codecName(transferSyntax: string): string {
  return JPEG.has(transferSyntax) ? 'jpeg' : JPEG2000.has(transferSyntax) ? 'jp2k' : isNative(transferSyntax) ? 'none' : NAMES[transferSyntax] ?? transferSyntax;
}

/** Throws UnsupportedSlideError naming the transfer syntax when no decoder handles it. */
export function checkTransferSyntax(inst: DicomInstance): void {
  const ts = inst.transferSyntax;
  if (!JPEG.has(ts) && !JPEG2000.has(ts) && !isNative(ts)) {
    throw new UnsupportedSlideError(`${inst.name}: unsupported DICOM transfer syntax ${ts}${NAMES[ts] ? ` (${NAMES[ts]})` : ''}`);
  }
  if (inst.samplesPerPixel !== 1 && inst.samplesPerPixel !== 3) throw new UnsupportedSlideError(`${inst.name}: ${inst.samplesPerPixel} samples per pixel`);
}

/**
 * One DICOM instance as a tiled image: frames on a grid of `columns × rows` tiles over the total
 * pixel matrix, in TILED_FULL order or placed by per-frame positions (TILED_SPARSE). Tiles a
 * sparse instance does not store read as white.
 */
export class DicomImage {
  readonly width: number;
  readonly height: number;
  readonly tileWidth: number;
  readonly tileHeight: number;
  readonly tilesAcross: number;
  readonly tilesDown: number;
  readonly inst: DicomInstance;
  /** Parts of a concatenation (one entry for a plain instance), their frame indexes and first frames. */
  private readonly parts: DicomInstance[];
  private readonly indexes: FrameIndex[];
  private readonly partStarts: number[];
  /** Tile index → frame index (−1: not stored). */
  private readonly grid: Int32Array;
  /** Frames decoded since open, for tests and benchmarks. */
  framesDecoded = 0;

  /** @param parts one instance, or the parts of a concatenation in frame-offset order. */
  constructor(parts: DicomInstance[], private readonly cache: TileCache, private readonly cacheKey: string, warnings: string[]) {
    const inst = parts[0]!;
    this.inst = inst;
    this.parts = parts;
    checkTransferSyntax(inst);
    this.partStarts = [];
    let total = 0;
    for (const p of parts) {
      if (p.transferSyntax !== inst.transferSyntax || p.columns !== inst.columns || p.rows !== inst.rows || p.totalColumns !== inst.totalColumns || p.totalRows !== inst.totalRows) {
        throw new CorruptSlideError(`${p.name}: concatenation part differs from ${inst.name} in size or transfer syntax`);
      }
      if (p.concatenationUid !== null && p.concatenationFrameOffset !== total) {
        throw new CorruptSlideError(`${p.name}: concatenation frame offset ${p.concatenationFrameOffset}, expected ${total}`);
      }
      this.partStarts.push(total);
      total += p.frames;
    }
    const frameCount = total;
    const positions = inst.positions ? parts.flatMap((p) => p.positions ?? []) : null;
    if (positions && positions.length !== frameCount) throw new CorruptSlideError(`${inst.name}: concatenation parts disagree on per-frame positions`);
    this.width = inst.totalColumns;
    this.height = inst.totalRows;
    this.tileWidth = inst.columns;
    this.tileHeight = inst.rows;
    // A frame is decoded whole: bound it before any decoder allocates (64 Mpx, 192 MiB of RGB).
    if (this.tileWidth * this.tileHeight > 1 << 26) throw new UnsupportedSlideError(`${inst.name}: ${this.tileWidth} × ${this.tileHeight} frames are too large to decode`);
    this.tilesAcross = Math.ceil(this.width / this.tileWidth);
    this.tilesDown = Math.ceil(this.height / this.tileHeight);
    const tiles = this.tilesAcross * this.tilesDown;
    if (tiles > 10_000_000) throw new CorruptSlideError(`${inst.name}: ${tiles} tiles in the total pixel matrix`);
    this.indexes = parts.map((p) => new FrameIndex(p));
    this.grid = new Int32Array(tiles).fill(-1);
    if (positions && inst.organization !== 'TILED_FULL') {
      let duplicates = 0;
      positions.forEach((p, f) => {
        if (p.column % this.tileWidth !== 0 || p.row % this.tileHeight !== 0) {
          throw new UnsupportedSlideError(`${inst.name}: frame ${f + 1} at (${p.column + 1}, ${p.row + 1}) is not on the ${this.tileWidth} × ${this.tileHeight} tile grid`);
        }
        const c = p.column / this.tileWidth;
        const r = p.row / this.tileHeight;
        if (c < 0 || r < 0 || c >= this.tilesAcross || r >= this.tilesDown) throw new CorruptSlideError(`${inst.name}: frame ${f + 1} lies outside the total pixel matrix`);
        // Several frames at one position are other focal planes or optical paths: keep the first.
        if (this.grid[r * this.tilesAcross + c]! >= 0) duplicates++;
        else this.grid[r * this.tilesAcross + c] = f;
      });
      if (duplicates) warnings.push(`${inst.name}: ${duplicates} frames share a tile position (other focal planes or optical paths); the first is shown`);
    } else {
      // TILED_FULL: row-major tiles; further planes/paths follow and are not shown.
      if (frameCount < tiles) throw new CorruptSlideError(`${inst.name}: ${frameCount} frames for a ${this.tilesAcross} × ${this.tilesDown} tile grid`);
      if (inst.organization !== 'TILED_FULL' && frameCount > 1) warnings.push(`${inst.name}: DimensionOrganizationType ${inst.organization || 'missing'}; frames taken in TILED_FULL order`);
      for (let t = 0; t < tiles; t++) this.grid[t] = t;
    }
  }

  /**
   * Pixels [x, x + w) × [y, y + h), inside the image, painted into `out` (stride `outWidth`) at
   * (ox, oy); `store` false: frames decoded for it are not kept in the tile cache (a one-pass scan).
   */
  async paint(x: number, y: number, w: number, h: number, out: Buffer, outWidth: number, ox: number, oy: number, store = true): Promise<void> {
    const c0 = Math.floor(x / this.tileWidth);
    const c1 = Math.ceil((x + w) / this.tileWidth);
    const r0 = Math.floor(y / this.tileHeight);
    const r1 = Math.ceil((y + h) / this.tileHeight);
    const jobs: Promise<void>[] = [];
    for (let r = r0; r < r1; r++) {
      for (let c = c0; c < c1; c++) {
        const frame = this.grid[r * this.tilesAcross + c]!;
        if (frame < 0) continue;
        jobs.push(this.tile(frame, store).then((tile) => {
          const tx = c * this.tileWidth;
          const ty = r * this.tileHeight;
          const sx0 = Math.max(x, tx);
          const sx1 = Math.min(x + w, tx + tile.width);
          if (sx1 <= sx0) return;
          for (let yy = Math.max(y, ty); yy < Math.min(y + h, ty + tile.height); yy++) {
            const src = ((yy - ty) * tile.width + (sx0 - tx)) * 3;
            tile.data.copy(out, ((oy + yy - y) * outWidth + ox + (sx0 - x)) * 3, src, src + (sx1 - sx0) * 3);
          }
        }));
      }
    }
    await Promise.all(jobs);
  }

  private tile(frame: number, store = true): Promise<RgbImage> {
    return this.cache.getOrLoad(`${this.cacheKey}/${frame}`, () => this.decode(frame), store);
  }

  private async decode(frame: number): Promise<RgbImage> {
    let p = this.parts.length - 1;
    while (this.partStarts[p]! > frame) p--;
    const inst = this.parts[p]!;
    const span = await this.indexes[p]!.frame(frame - this.partStarts[p]!);
    const parts = await Promise.all(span.parts.map((p) => inst.source.read(p.offset, p.length)));
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const what = `${inst.name}: frame ${frame + 1}`;
    let img: RgbImage;
    if (JPEG.has(inst.transferSyntax)) {
      // The JPEG's own markers decide its colour space: the shared series says RGB while its
      // JFIF frames hold YCbCr, and libjpeg converts them correctly only if left alone.
      img = await decodeWithSharp(data, 'JPEG', what);
    } else if (JPEG2000.has(inst.transferSyntax)) {
      const { decodeBlock } = await import('../../codecs/registry.ts');
      img = await decodeBlock(data, {
        name: what, width: inst.columns, height: inst.rows, compression: 33005, photometric: 2, samplesPerPixel: inst.samplesPerPixel,
        bitsPerSample: 8, planarConfiguration: 1, predictor: 1, sampleFormat: 1, jpegTables: null,
      });
    } else {
      img = nativeToRgb(data, inst);
    }
    if (img.width !== inst.columns || img.height !== inst.rows) {
      throw new CorruptSlideError(`${what}: decoded ${img.width} × ${img.height}, the instance says ${inst.columns} × ${inst.rows}`);
    }
    this.framesDecoded++;
    return img;
  }
}

/** Uncompressed 8-bit frames: RGB (interleaved or planar) or MONOCHROME1/2. */
function nativeToRgb(data: Buffer, inst: DicomInstance): RgbImage {
  const n = inst.rows * inst.columns;
  const out = Buffer.allocUnsafe(n * 3);
  if (inst.samplesPerPixel === 3) {
    if (inst.photometric !== 'RGB') throw new UnsupportedSlideError(`${inst.name}: native ${inst.photometric} pixel data is not supported`);
    if (inst.planarConfiguration === 0) data.copy(out, 0, 0, n * 3);
    else for (let i = 0; i < n; i++) { out[3 * i] = data[i]!; out[3 * i + 1] = data[n + i]!; out[3 * i + 2] = data[2 * n + i]!; }
  } else {
    const invert = inst.photometric === 'MONOCHROME1' ? 255 : 0;
    for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = data[i]! ^ invert;
  }
  return { width: inst.columns, height: inst.rows, data: out };
}
