import type { ByteSource } from '../../io/byte-source.ts';
import { CorruptSlideError, UnsupportedSlideError } from '../../errors.ts';

/**
 * NDPI's TIFF directory, parsed by hand because NDPI bends classic TIFF for files over 4 GiB:
 * - the next-IFD pointer after the entries is 8 bytes (low word, then high word);
 * - after that pointer, one 4-byte "value extension" per entry holds the high 32 bits of the
 *   entry's value or value offset (OpenSlide 4 reads these; 3.4 guessed the high bits from the
 *   directory's own position). We read the extensions only when the file is larger than 4 GiB,
 *   where they are the only correct source; below 4 GiB every high word must be zero anyway.
 */

/** Private NDPI tags (names after OpenSlide's `openslide-vendor-hamamatsu.c`). */
export const NdpiTag = {
  /** High 32 bits of StripOffsets / StripByteCounts (tifffile's NDPI_OffsetHighBytes, NDPI_ByteCountHighBytes). */
  offsetHigh: 65324,
  byteCountHigh: 65325,
  formatFlag: 65420,
  sourceLens: 65421,
  xOffset: 65422,
  yOffset: 65423,
  focalPlane: 65424,
  mcuStarts: 65426,
  reference: 65427,
  /** High 32 bits of each McuStarts entry, written by NDP.scan for files over 4 GiB. */
  mcuStartsHigh: 65432,
  propertyMap: 65449,
} as const;

export const TiffTag = {
  imageWidth: 256, imageLength: 257, bitsPerSample: 258, compression: 259, photometric: 262,
  make: 271, model: 272, stripOffsets: 273, samplesPerPixel: 277, rowsPerStrip: 278,
  stripByteCounts: 279, xResolution: 282, yResolution: 283, resolutionUnit: 296,
  software: 305, dateTime: 306, tileWidth: 322, ycbcrSubsampling: 530,
} as const;

const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };
const FOUR_GIB = 2 ** 32;
/** Bounds against hostile headers: real NDPI directories have about 50 entries and 6–10 IFDs. */
const MAX_ENTRIES = 4096;
const MAX_IFDS = 1024;

export interface NdpiEntry {
  tag: number;
  type: number;
  count: number;
  /** Absolute file offset of the values, or null when they sit inline (`inline` holds them). */
  valueOffset: number | null;
  inline: Buffer;
  /** High 32 bits from the value extension (0 below 4 GiB); widens an inline LONG to 64 bits. */
  high: number;
}

export interface NdpiIfd {
  index: number;
  offset: number;
  entries: Map<number, NdpiEntry>;
}

/** Reads the IFDs of an NDPI file (all, or the first `maxIfds`). Throws CorruptSlideError on loops, bad offsets or huge counts. */
export async function readNdpiDirectories(source: ByteSource, maxIfds = MAX_IFDS): Promise<NdpiIfd[]> {
  if (source.size < 16) throw new CorruptSlideError(`${source.name}: file too short for a TIFF header (${source.size} bytes)`);
  const header = await source.read(0, 12);
  if (header.toString('latin1', 0, 4) !== 'II*\0') {
    throw new UnsupportedSlideError(`${source.name}: not a little-endian classic TIFF (NDPI files are)`);
  }
  const wide = source.size > FOUR_GIB;
  // NDPI's header pointer is 8 bytes too (bytes 8–11 are zero below 4 GiB)
  let offset = header.readUInt32LE(4) + (wide ? header.readUInt32LE(8) * FOUR_GIB : 0);
  const seen = new Set<number>();
  const ifds: NdpiIfd[] = [];
  while (offset !== 0 && ifds.length < maxIfds) {
    if (ifds.length >= MAX_IFDS) throw new CorruptSlideError(`${source.name}: more than ${MAX_IFDS} directories`);
    if (seen.has(offset)) throw new CorruptSlideError(`${source.name}: directory loop at offset ${offset}`);
    seen.add(offset);
    if (offset < 8 || offset + 2 > source.size) {
      throw new CorruptSlideError(`${source.name}: directory ${ifds.length} offset ${offset} points outside the file (${source.size} bytes)`);
    }
    const count = (await source.read(offset, 2)).readUInt16LE(0);
    if (count === 0 || count > MAX_ENTRIES) throw new CorruptSlideError(`${source.name}: directory ${ifds.length} claims ${count} entries`);
    const bodyLength = 12 * count + 8;
    const body = await source.read(offset + 2, Math.min(bodyLength, source.size - offset - 2));
    if (body.length < bodyLength) throw new CorruptSlideError(`${source.name}: directory ${ifds.length} is truncated`);
    const highs = wide ? await readExtensions(source, offset + 2 + bodyLength, count) : null;
    const entries = new Map<number, NdpiEntry>();
    for (let i = 0; i < count; i++) {
      const at = 12 * i;
      const tag = body.readUInt16LE(at);
      const type = body.readUInt16LE(at + 2);
      const entryCount = body.readUInt32LE(at + 4);
      const size = TYPE_SIZE[type];
      if (size === undefined) continue; // unknown types are skipped, as libtiff does
      const high = highs ? highs.readUInt32LE(4 * i) : 0;
      const bytes = size * entryCount;
      const inline = body.subarray(at + 8, at + 12);
      const valueOffset = bytes <= 4 ? null : body.readUInt32LE(at + 8) + high * FOUR_GIB;
      entries.set(tag, { tag, type, count: entryCount, valueOffset, inline, high });
    }
    ifds.push({ index: ifds.length, offset, entries });
    offset = body.readUInt32LE(12 * count) + body.readUInt32LE(12 * count + 4) * FOUR_GIB;
  }
  if (ifds.length === 0) throw new CorruptSlideError(`${source.name}: TIFF has no directories`);
  return ifds;
}

async function readExtensions(source: ByteSource, at: number, count: number): Promise<Buffer | null> {
  // A writer that omits the extensions leaves whatever follows; a block past the end means none.
  if (at + 4 * count > source.size) return null;
  return source.read(at, 4 * count);
}

/** Reads `length` values starting at value `first` of an entry as numbers (integers or reals). */
export async function readValues(source: ByteSource, entry: NdpiEntry, first = 0, length = entry.count): Promise<number[]> {
  const size = TYPE_SIZE[entry.type]!;
  if (first < 0 || length < 0 || first + length > entry.count) {
    throw new CorruptSlideError(`${source.name}: tag ${entry.tag} has ${entry.count} values; asked for ${first}..${first + length}`);
  }
  const buf = entry.valueOffset === null
    ? entry.inline.subarray(size * first, size * (first + length))
    : await source.read(entry.valueOffset + size * first, size * length);
  const out: number[] = new Array(length);
  for (let i = 0; i < length; i++) out[i] = decodeValue(buf, entry.type, size * i);
  // An inline single LONG widened by its value extension (StripOffsets of a level above 4 GiB).
  if (entry.valueOffset === null && entry.high !== 0 && length === 1 && first === 0 && (entry.type === 4 || entry.type === 3)) {
    out[0] = out[0]! + entry.high * FOUR_GIB;
  }
  return out;
}

function decodeValue(buf: Buffer, type: number, at: number): number {
  switch (type) {
    case 1: case 7: case 2: return buf.readUInt8(at);
    case 6: return buf.readInt8(at);
    case 3: return buf.readUInt16LE(at);
    case 8: return buf.readInt16LE(at);
    case 4: case 13: return buf.readUInt32LE(at);
    case 9: return buf.readInt32LE(at);
    case 5: { const d = buf.readUInt32LE(at + 4); return d === 0 ? NaN : buf.readUInt32LE(at) / d; }
    case 10: { const d = buf.readInt32LE(at + 4); return d === 0 ? NaN : buf.readInt32LE(at) / d; }
    case 11: return buf.readFloatLE(at);
    case 12: return buf.readDoubleLE(at);
    case 16: case 18: return Number(buf.readBigUInt64LE(at));
    case 17: return Number(buf.readBigInt64LE(at));
    default: return NaN;
  }
}

/** First value of a tag, or `fallback` when absent. */
export async function readNumber(source: ByteSource, ifd: NdpiIfd, tag: number, fallback?: number): Promise<number> {
  const entry = ifd.entries.get(tag);
  if (!entry || entry.count === 0) {
    if (fallback !== undefined) return fallback;
    throw new CorruptSlideError(`${source.name}: directory ${ifd.index} lacks required tag ${tag}`);
  }
  return (await readValues(source, entry, 0, 1))[0]!;
}

/** An ASCII tag as a string (NUL-trimmed), bounded to `maxBytes`; null when absent. */
export async function readAscii(source: ByteSource, ifd: NdpiIfd, tag: number, maxBytes = 1 << 20): Promise<string | null> {
  const entry = ifd.entries.get(tag);
  if (!entry || entry.type !== 2) return null;
  const length = Math.min(entry.count, maxBytes);
  const buf = entry.valueOffset === null ? entry.inline.subarray(0, length) : await source.read(entry.valueOffset, length);
  const nul = buf.indexOf(0);
  return buf.toString('latin1', 0, nul < 0 ? buf.length : nul);
}
