import type { ByteSource } from '../../io/byte-source.ts';
import { CorruptSlideError } from '../../errors.ts';

/** Byte size of each TIFF field type (TIFF 6.0 §2 and BigTIFF); 0 for unknown types. */
const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };

/** Most entries one IFD may hold; real slides use < 100, so more means a mutated or hostile file. */
const MAX_ENTRIES = 4096;

/** One raw IFD entry: where its values live, so large arrays can be read lazily and in bounds. */
export interface RawEntry {
  tag: number;
  type: number;
  count: number;
  /** File offset of the first value (inside the IFD itself when the values fit inline). */
  valueOffset: number;
}

export interface TiffHeader {
  littleEndian: boolean;
  bigTiff: boolean;
  firstIfdOffset: number;
}

/** Parses the 8- or 16-byte TIFF header; throws UnsupportedSlideError-worthy null when not a TIFF. */
export function parseTiffHeader(head: Buffer): TiffHeader | null {
  if (head.length < 8) return null;
  const bom = head.readUInt16BE(0);
  if (bom !== 0x4949 && bom !== 0x4d4d) return null;
  const le = bom === 0x4949;
  const magic = le ? head.readUInt16LE(2) : head.readUInt16BE(2);
  if (magic === 42) return { littleEndian: le, bigTiff: false, firstIfdOffset: le ? head.readUInt32LE(4) : head.readUInt32BE(4) };
  if (magic === 43 && head.length >= 16) {
    const offsetSize = le ? head.readUInt16LE(4) : head.readUInt16BE(4);
    if (offsetSize !== 8) return null;
    const first = le ? head.readBigUInt64LE(8) : head.readBigUInt64BE(8);
    return { littleEndian: le, bigTiff: true, firstIfdOffset: bigToNumber(first) };
  }
  return null;
}

function bigToNumber(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** Reads an unsigned integer of `size` bytes (1, 2, 4, 8) at `pos` of `buf`. */
export function readUint(buf: Buffer, pos: number, size: number, le: boolean): number {
  switch (size) {
    case 1: return buf[pos]!;
    case 2: return le ? buf.readUInt16LE(pos) : buf.readUInt16BE(pos);
    case 4: return le ? buf.readUInt32LE(pos) : buf.readUInt32BE(pos);
    default: return bigToNumber(le ? buf.readBigUInt64LE(pos) : buf.readBigUInt64BE(pos));
  }
}

/**
 * Reads and checks one IFD's entry table before geotiff parses it: geotiff allocates a typed array
 * of each entry's declared count up front, so a mutated count (4 × 10⁹ LONGs) would be a 16 GB
 * allocation. Every entry's values must lie inside the file, which bounds every later allocation
 * by the file size. Returns the entries and the offset of the next IFD.
 */
export async function readEntryTable(source: ByteSource, header: TiffHeader, ifdOffset: number): Promise<{ entries: Map<number, RawEntry>; nextIfdOffset: number }> {
  const { littleEndian: le, bigTiff } = header;
  const countSize = bigTiff ? 8 : 2;
  const entrySize = bigTiff ? 20 : 12;
  const inlineSize = bigTiff ? 8 : 4;
  if (!Number.isSafeInteger(ifdOffset) || ifdOffset < 8 || ifdOffset + countSize > source.size) {
    throw new CorruptSlideError(`${source.name}: IFD offset ${ifdOffset} lies outside the file (${source.size} bytes); is the file truncated?`);
  }
  const count = readUint(await source.read(ifdOffset, countSize), 0, countSize, le);
  if (count === 0 || count > MAX_ENTRIES) throw new CorruptSlideError(`${source.name}: IFD at ${ifdOffset} claims ${count} entries (expected 1..${MAX_ENTRIES})`);
  const tableLength = count * entrySize + inlineSize;
  if (ifdOffset + countSize + tableLength > source.size) {
    throw new CorruptSlideError(`${source.name}: IFD at ${ifdOffset} with ${count} entries runs past the end of the file (${source.size} bytes)`);
  }
  const table = await source.read(ifdOffset + countSize, tableLength);
  const entries = new Map<number, RawEntry>();
  for (let i = 0; i < count; i++) {
    const p = i * entrySize;
    const tag = readUint(table, p, 2, le);
    const type = readUint(table, p + 2, 2, le);
    const n = readUint(table, p + 4, bigTiff ? 8 : 4, le);
    const size = TYPE_SIZE[type] ?? 0;
    if (size === 0) throw new CorruptSlideError(`${source.name}: IFD at ${ifdOffset}: tag ${tag} has unknown field type ${type}`);
    const bytes = size * n;
    let valueOffset = ifdOffset + countSize + p + (bigTiff ? 12 : 8);
    if (bytes > inlineSize) {
      valueOffset = readUint(table, p + (bigTiff ? 12 : 8), inlineSize, le);
      if (!Number.isSafeInteger(bytes) || valueOffset + bytes > source.size) {
        throw new CorruptSlideError(`${source.name}: IFD at ${ifdOffset}: tag ${tag} claims ${n} values at offset ${valueOffset}, past the end of the file (${source.size} bytes)`);
      }
    }
    entries.set(tag, { tag, type, count: n, valueOffset });
  }
  const nextIfdOffset = readUint(table, count * entrySize, inlineSize, le);
  return { entries, nextIfdOffset };
}

/** Reads `n` unsigned values of entry `e` starting at value index `start` (types BYTE/SHORT/LONG/LONG8/IFD/IFD8). */
export async function readEntryValues(source: ByteSource, le: boolean, e: RawEntry, start: number, n: number): Promise<number[]> {
  const size = TYPE_SIZE[e.type] ?? 0;
  if (![1, 3, 4, 13, 16, 18].includes(e.type)) {
    throw new CorruptSlideError(`${source.name}: tag ${e.tag} has field type ${e.type}, expected an unsigned integer type`);
  }
  const count = Math.max(0, Math.min(n, e.count - start));
  const buf = await source.read(e.valueOffset + start * size, count * size);
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = readUint(buf, i * size, size, le);
  return out;
}
