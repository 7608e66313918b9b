/**
 * A streaming writer for tiled, pyramidal BigTIFF files (TIFF 6.0 + BigTIFF extension).
 *
 * Layout: the 16-byte BigTIFF header, then tile data appended in whatever order the caller
 * produces it, then one IFD per level (level 0 first, chained by next-IFD offsets) whose
 * TileOffsets/TileByteCounts point back into the data. Only the offset tables are held in memory
 * (16 bytes per tile: a 100,000² slide with 512-px tiles needs about 0.8 MB for all levels), so
 * the file can be far larger than memory. The writer does not encode pixels: callers hand it
 * finished tile streams (e.g. JPEG from sharp), which keeps it reusable for any codec.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { invalidParameter, LaminaError } from '../errors.ts';

/** Geometry of one pyramid level. */
export interface TiledLevelSpec {
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  /** Pixel size of this level in µm (written as X/YResolution in pixels per cm). */
  mppX?: number;
  mppY?: number;
}

/** What every level shares. */
export interface TiledTiffOptions {
  levels: TiledLevelSpec[];
  /** TIFF Compression code: 7 = JPEG (TIFF Tech Note 2), 1 = none, 8 = Deflate. */
  compression: number;
  /** TIFF PhotometricInterpretation: 6 = YCbCr (for JFIF JPEG tiles), 2 = RGB, 1 = min-is-black. */
  photometric: number;
  samplesPerPixel: number;
  /** Must match the chroma subsampling of the JPEG streams when photometric is YCbCr. @defaultValue [2, 2] */
  ycbcrSubsampling?: [number, number];
  /** ImageDescription (tag 270) on the level-0 IFD. */
  description?: string;
  software?: string;
}

/** Thrown for misuse of the writer (a tile written twice, or missing at close). */
export class TiffWriteError extends LaminaError {
  constructor(message: string) { super('tiff_write', message); }
}

const enum T { SHORT = 3, ASCII = 2, LONG = 4, RATIONAL = 5, LONG8 = 16 }
const TYPE_SIZE: Record<number, number> = { 2: 1, 3: 2, 4: 4, 5: 8, 16: 8 };
const WRITE_BUFFER_BYTES = 4 << 20;

interface Entry { tag: number; type: T; values: number[] | Uint8Array }

/**
 * @example
 * const w = BigTiffTileWriter.create('out.tiff', { levels, compression: 7, photometric: 6, samplesPerPixel: 3 });
 * w.writeTile(0, col, row, jpegBytes);   // any order, each tile exactly once
 * const bytes = w.close();
 */
export class BigTiffTileWriter {
  private readonly fd: number;
  private position = 16;
  private readonly buffer = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
  private buffered = 0;
  private readonly offsets: Float64Array[];
  private readonly counts: Float64Array[];
  private readonly grids: Array<{ cols: number; rows: number }>;
  private closed = false;

  private constructor(readonly path: string, private readonly options: TiledTiffOptions) {
    if (options.levels.length === 0) throw invalidParameter('levels', 'at least one level', 0);
    this.grids = options.levels.map((l, i) => {
      for (const k of ['width', 'height', 'tileWidth', 'tileHeight'] as const) {
        if (!Number.isInteger(l[k]) || l[k] < 1 || l[k] > 2 ** 31) throw invalidParameter(`levels[${i}].${k}`, 'positive integer', l[k]);
      }
      // TIFF 6.0: tile sizes are multiples of 16.
      if (l.tileWidth % 16 || l.tileHeight % 16) throw invalidParameter(`levels[${i}].tileWidth`, 'multiple of 16', l.tileWidth);
      return { cols: Math.ceil(l.width / l.tileWidth), rows: Math.ceil(l.height / l.tileHeight) };
    });
    this.offsets = this.grids.map((g) => new Float64Array(g.cols * g.rows));
    this.counts = this.grids.map((g) => new Float64Array(g.cols * g.rows));
    this.fd = openSync(path, 'w');
  }

  /** Opens `path` for writing (truncating it) and reserves the header. */
  static create(path: string, options: TiledTiffOptions): BigTiffTileWriter {
    return new BigTiffTileWriter(path, options);
  }

  /** Tile grid (columns, rows) of a level. */
  grid(levelIndex: number): { cols: number; rows: number } {
    return this.grids[levelIndex];
  }

  /** Appends one finished tile stream; each (level, col, row) exactly once, in any order. */
  writeTile(levelIndex: number, col: number, row: number, bytes: Uint8Array): void {
    if (this.closed) throw new TiffWriteError(`${this.path}: writeTile after close`);
    const g = this.grids[levelIndex];
    if (!g || col < 0 || row < 0 || col >= g.cols || row >= g.rows) {
      throw new TiffWriteError(`${this.path}: tile (${col}, ${row}) is outside level ${levelIndex}`);
    }
    const i = row * g.cols + col;
    if (this.counts[levelIndex][i] !== 0) throw new TiffWriteError(`${this.path}: tile (${col}, ${row}) of level ${levelIndex} written twice`);
    if (bytes.length === 0) throw new TiffWriteError(`${this.path}: empty tile (${col}, ${row}) at level ${levelIndex}`);
    this.offsets[levelIndex][i] = this.position;
    this.counts[levelIndex][i] = bytes.length;
    this.append(bytes);
  }

  /** Writes the IFDs and patches the header; returns the file size in bytes. */
  close(): number {
    if (this.closed) return this.position;
    try {
      this.grids.forEach((g, level) => {
        const missing = this.counts[level].indexOf(0);
        if (missing >= 0) {
          throw new TiffWriteError(`${this.path}: tile (${missing % g.cols}, ${Math.floor(missing / g.cols)}) of level ${level} was never written`);
        }
      });
      if (this.position % 2) this.append(new Uint8Array(1)); // IFDs start on a word boundary
      const firstIfd = this.position;
      for (let level = 0; level < this.options.levels.length; level++) {
        const ifdStart = this.position;
        const isLast = level === this.options.levels.length - 1;
        const block = encodeIfd(this.entries(level), ifdStart, (next) => (isLast ? 0 : next));
        this.append(block);
      }
      this.flush();
      const header = Buffer.alloc(16);
      header.write('II', 0, 'latin1');
      header.writeUInt16LE(43, 2); // BigTIFF version
      header.writeUInt16LE(8, 4); // offset size
      header.writeUInt16LE(0, 6);
      header.writeBigUInt64LE(BigInt(firstIfd), 8);
      writeSync(this.fd, header, 0, 16, 0);
      return this.position;
    } finally {
      this.closed = true;
      closeSync(this.fd);
    }
  }

  /** Closes the file without writing IFDs (after a failure); the file is left invalid. */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  private entries(level: number): Entry[] {
    const o = this.options;
    const l = o.levels[level];
    const spp = o.samplesPerPixel;
    const entries: Entry[] = [
      { tag: 254, type: T.LONG, values: [level === 0 ? 0 : 1] }, // NewSubfileType: reduced resolution
      { tag: 256, type: T.LONG, values: [l.width] },
      { tag: 257, type: T.LONG, values: [l.height] },
      { tag: 258, type: T.SHORT, values: new Array(spp).fill(8) },
      { tag: 259, type: T.SHORT, values: [o.compression] },
      { tag: 262, type: T.SHORT, values: [o.photometric] },
    ];
    if (level === 0 && o.description) entries.push({ tag: 270, type: T.ASCII, values: ascii(o.description) });
    entries.push({ tag: 277, type: T.SHORT, values: [spp] });
    if (l.mppX && l.mppY) {
      entries.push({ tag: 282, type: T.RATIONAL, values: rational(10000 / l.mppX) });
      entries.push({ tag: 283, type: T.RATIONAL, values: rational(10000 / l.mppY) });
    }
    entries.push({ tag: 284, type: T.SHORT, values: [1] });
    if (l.mppX && l.mppY) entries.push({ tag: 296, type: T.SHORT, values: [3] }); // centimetre
    if (o.software) entries.push({ tag: 305, type: T.ASCII, values: ascii(o.software) });
    entries.push({ tag: 322, type: T.LONG, values: [l.tileWidth] });
    entries.push({ tag: 323, type: T.LONG, values: [l.tileHeight] });
    entries.push({ tag: 324, type: T.LONG8, values: Array.from(this.offsets[level]) });
    entries.push({ tag: 325, type: T.LONG8, values: Array.from(this.counts[level]) });
    if (o.photometric === 6) {
      entries.push({ tag: 530, type: T.SHORT, values: o.ycbcrSubsampling ?? [2, 2] });
      entries.push({ tag: 532, type: T.RATIONAL, values: [0, 1, 255, 1, 128, 1, 255, 1, 128, 1, 255, 1] });
    }
    return entries;
  }

  private append(bytes: Uint8Array): void {
    if (bytes.length >= WRITE_BUFFER_BYTES) {
      this.flush();
      writeSync(this.fd, bytes, 0, bytes.length, this.position);
      this.position += bytes.length;
      return;
    }
    if (this.buffered + bytes.length > WRITE_BUFFER_BYTES) this.flush();
    this.buffer.set(bytes, this.buffered);
    this.buffered += bytes.length;
    this.position += bytes.length;
  }

  private flush(): void {
    if (this.buffered === 0) return;
    writeSync(this.fd, this.buffer, 0, this.buffered, this.position - this.buffered);
    this.buffered = 0;
  }
}

function ascii(text: string): Uint8Array {
  const bytes = Buffer.from(`${text}\0`, 'latin1');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** A positive real as an unsigned rational with a denominator fine enough for µm/px to 1e-4. */
function rational(value: number): number[] {
  const den = 1000;
  return [Math.round(value * den), den];
}

/** Serialises one IFD starting at file offset `start`: entries, next-IFD slot, then out-of-line values. */
function encodeIfd(entries: Entry[], start: number, nextOffset: (end: number) => number): Uint8Array {
  entries.sort((a, b) => a.tag - b.tag);
  const headerBytes = 8 + entries.length * 20 + 8;
  let extra = 0;
  const sizes = entries.map((e) => {
    const n = e.type === T.RATIONAL ? e.values.length / 2 : e.values.length;
    const bytes = n * TYPE_SIZE[e.type];
    if (bytes > 8) extra += bytes + (bytes % 2);
    return { count: n, bytes };
  });
  const out = Buffer.alloc(headerBytes + extra);
  out.writeBigUInt64LE(BigInt(entries.length), 0);
  let far = headerBytes;
  entries.forEach((e, i) => {
    const p = 8 + i * 20;
    out.writeUInt16LE(e.tag, p);
    out.writeUInt16LE(e.type, p + 2);
    out.writeBigUInt64LE(BigInt(sizes[i].count), p + 4);
    let at = p + 12;
    if (sizes[i].bytes > 8) {
      out.writeBigUInt64LE(BigInt(start + far), p + 12);
      at = far;
      far += sizes[i].bytes + (sizes[i].bytes % 2);
    }
    writeValues(out, at, e);
  });
  out.writeBigUInt64LE(BigInt(nextOffset(start + out.length)), 8 + entries.length * 20);
  return out;
}

function writeValues(out: Buffer, at: number, e: Entry): void {
  const v = e.values;
  for (let i = 0; i < v.length; i++) {
    switch (e.type) {
      case T.ASCII: out.writeUInt8(v[i], at + i); break;
      case T.SHORT: out.writeUInt16LE(v[i], at + i * 2); break;
      case T.LONG: case T.RATIONAL: out.writeUInt32LE(v[i], at + i * 4); break;
      case T.LONG8: out.writeBigUInt64LE(BigInt(v[i]), at + i * 8); break;
    }
  }
}
