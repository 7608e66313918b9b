import type { ByteSource } from '../../io/byte-source.ts';
import { CorruptSlideError } from '../../errors.ts';
import { readEntryValues, type RawEntry } from './ifd-entries.ts';

/** Entries read per chunk: 8 K offsets is 64 KiB at most, and a 100 k × 100 k level needs ~20 chunks. */
const CHUNK = 8192;

/** Where one tile or strip lies in the file; `length` 0 means the block is absent (sparse slide). */
export interface BlockLocation {
  offset: number;
  length: number;
}

/**
 * The TileOffsets/TileByteCounts (or strip) tables of one IFD, read lazily in bounded chunks so a
 * huge level costs memory only for the parts visited, and checked against the file size.
 */
export class BlockTable {
  private readonly chunks = new Map<number, Promise<{ offsets: number[]; counts: number[] }>>();

  constructor(
    private readonly source: ByteSource,
    private readonly littleEndian: boolean,
    private readonly name: string,
    private readonly offsets: RawEntry | undefined,
    private readonly counts: RawEntry | undefined,
    readonly count: number,
  ) {
    if (!offsets || !counts) throw new CorruptSlideError(`${name}: missing tile/strip offsets or byte counts`);
    if (offsets.count < count || counts.count < count) {
      throw new CorruptSlideError(`${name}: ${Math.min(offsets.count, counts.count)} tile/strip entries for an image that needs ${count}`);
    }
  }

  async location(index: number): Promise<BlockLocation> {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) throw new RangeError(`block ${index} out of range`);
    const c = Math.floor(index / CHUNK);
    let chunk = this.chunks.get(c);
    if (!chunk) {
      const start = c * CHUNK;
      const n = Math.min(CHUNK, this.count - start);
      chunk = Promise.all([
        readEntryValues(this.source, this.littleEndian, this.offsets!, start, n),
        readEntryValues(this.source, this.littleEndian, this.counts!, start, n),
      ]).then(([offsets, counts]) => ({ offsets, counts }));
      chunk.catch(() => this.chunks.delete(c));
      this.chunks.set(c, chunk);
    }
    const { offsets, counts } = await chunk;
    const i = index - c * CHUNK;
    const offset = offsets[i]!;
    const length = counts[i]!;
    if (offset === 0 || length === 0) return { offset: 0, length: 0 };
    if (offset + length > this.source.size) {
      throw new CorruptSlideError(`${this.name}: block ${index} at offset ${offset} (+${length} bytes) points past the end of the file (${this.source.size} bytes)`);
    }
    return { offset, length };
  }
}
