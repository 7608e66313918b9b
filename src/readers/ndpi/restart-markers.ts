import { CorruptSlideError, UnsupportedSlideError } from '../../errors.ts';
import type { JpegHeader } from './jpeg-header.ts';

/**
 * Random access into one huge restart-marked JPEG (an NDPI level): the geometry of its restart
 * intervals as a tile grid, and the assembly of a small valid JPEG from a rectangle of them.
 *
 * A restart interval is R MCUs in raster order; decoding can start at any interval because the
 * DC predictors reset there. Two cases:
 * - R divides the MCUs per row: a tile is one interval, R MCUs wide and one MCU row high. A block
 *   of tiles (rows r0..r1, columns c0..c1) is, for each MCU row, one contiguous run of intervals;
 *   the sub-JPEG is (c1 - c0)·R MCUs wide and keeps DRI = R, so its own intervals line up.
 * - otherwise intervals straddle row ends (the test slide has R = one full row, which is the
 *   first case). A tile is then the smallest band of g full MCU rows that starts and ends on an
 *   interval boundary, g = R / gcd(R, MCUs per row); the sub-JPEG is full width, DRI = R.
 * Either way every sub-JPEG row starts on an interval boundary, so the markers between runs are
 * renumbered RST0..7 in the new order and no entropy data is ever re-encoded.
 */
export interface RestartLayout {
  /** Image size from the TIFF tags (the SOF may be wrong beyond 65,535). */
  width: number;
  height: number;
  mcuWidth: number;
  mcuHeight: number;
  mcusPerRow: number;
  mcuRows: number;
  restartInterval: number;
  intervalCount: number;
  tileWidth: number;
  tileHeight: number;
  tilesAcross: number;
  tilesDown: number;
  intervalsPerTile: number;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Largest side of a JPEG: a sub-JPEG wider or taller than this cannot be written. */
const JPEG_MAX_SIDE = 65535;
/** Largest tile (one decode unit) we accept: 64 Mpx. */
const MAX_TILE_PIXELS = 1 << 26;

export function planRestartLayout(header: JpegHeader, width: number, height: number, what: string): RestartLayout {
  const mcusPerRow = Math.ceil(width / header.mcuWidth);
  const mcuRows = Math.ceil(height / header.mcuHeight);
  const r = header.restartInterval;
  const base = { width, height, mcuWidth: header.mcuWidth, mcuHeight: header.mcuHeight, mcusPerRow, mcuRows, restartInterval: r };
  if (r === 0) {
    return { ...base, intervalCount: 1, tileWidth: width, tileHeight: height, tilesAcross: 1, tilesDown: 1, intervalsPerTile: 1 };
  }
  const intervalCount = Math.ceil((mcusPerRow * mcuRows) / r);
  if (mcusPerRow % r === 0) {
    return {
      ...base, intervalCount, tileWidth: r * header.mcuWidth, tileHeight: header.mcuHeight,
      tilesAcross: mcusPerRow / r, tilesDown: mcuRows, intervalsPerTile: 1,
    };
  }
  const g = r / gcd(r, mcusPerRow);
  if (width > JPEG_MAX_SIDE || g * header.mcuHeight > JPEG_MAX_SIDE) {
    throw new UnsupportedSlideError(`${what}: restart interval of ${r} MCUs does not divide ${mcusPerRow} MCUs per row and the level is too wide to cut in full rows`);
  }
  if (width * g * header.mcuHeight > MAX_TILE_PIXELS) {
    throw new UnsupportedSlideError(`${what}: restart interval of ${r} MCUs makes ${width} × ${g * header.mcuHeight} tiles, too large to decode`);
  }
  return {
    ...base, intervalCount, tileWidth: width, tileHeight: g * header.mcuHeight,
    tilesAcross: 1, tilesDown: Math.ceil(mcuRows / g), intervalsPerTile: (g * mcusPerRow) / r,
  };
}

/** Interval range [first, end) covering tile row `row`, tile columns [col0, col1). */
export function intervalsOf(layout: RestartLayout, row: number, col0: number, col1: number): { first: number; end: number } {
  const rowFirst = row * layout.tilesAcross * layout.intervalsPerTile;
  return {
    first: rowFirst + col0 * layout.intervalsPerTile,
    end: Math.min(rowFirst + col1 * layout.intervalsPerTile, layout.intervalCount),
  };
}

/** One run of consecutive intervals as read from the file. */
export interface IntervalRun {
  /** Entropy-coded bytes of the run, its internal RST markers included, no trailing marker. */
  data: Buffer;
  /** Offsets in `data` where each interval after the first begins (its RST marker sits 2 bytes before). */
  innerStarts: number[];
}

/**
 * Checks the RST markers inside a run: interval i (i ≥ 1) is preceded by RST((i - 1) mod 8).
 * Catches wrong McuStarts offsets before libjpeg sees garbage.
 */
export function checkRun(run: IntervalRun, firstInterval: number, what: string): void {
  run.innerStarts.forEach((start, k) => {
    const i = firstInterval + k + 1;
    const expected = 0xd0 + ((i - 1) & 7);
    if (start < 2 || start > run.data.length || run.data[start - 2] !== 0xff || run.data[start - 1] !== expected) {
      throw new CorruptSlideError(`${what}: restart marker RST${(i - 1) & 7} expected before interval ${i} was not found (wrong McuStarts offset?)`);
    }
  });
}

/**
 * Builds a complete JPEG: the original header with the SOF size set to `width` × `height`, then
 * the runs in order with restart markers renumbered 0..7 across the new stream, then EOI.
 */
export function assembleJpeg(header: JpegHeader, width: number, height: number, runs: IntervalRun[]): Buffer {
  if (width < 1 || height < 1 || width > JPEG_MAX_SIDE || height > JPEG_MAX_SIDE) {
    throw new UnsupportedSlideError(`cannot build a ${width} × ${height} JPEG (limit ${JPEG_MAX_SIDE})`);
  }
  // header, each run followed by an RST marker (the last by EOI instead)
  let total = header.bytes.length;
  for (const run of runs) total += run.data.length + 2;
  const out = Buffer.allocUnsafe(total);
  header.bytes.copy(out, 0);
  out.writeUInt16BE(height, header.sofDimensionsAt);
  out.writeUInt16BE(width, header.sofDimensionsAt + 2);
  let at = header.bytes.length;
  let n = 0; // restart markers written so far in the new stream
  runs.forEach((run, k) => {
    run.data.copy(out, at);
    for (const start of run.innerStarts) out[at + start - 1] = 0xd0 + (n++ & 7);
    at += run.data.length;
    if (k < runs.length - 1) {
      out[at] = 0xff;
      out[at + 1] = 0xd0 + (n++ & 7);
      at += 2;
    }
  });
  out[at] = 0xff;
  out[at + 1] = 0xd9;
  return out.subarray(0, at + 2);
}
