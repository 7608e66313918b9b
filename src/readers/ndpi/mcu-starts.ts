import type { ByteSource } from '../../io/byte-source.ts';
import { CorruptSlideError, UnsupportedSlideError } from '../../errors.ts';
import { readValues, type NdpiEntry } from './ndpi-directory.ts';

/**
 * Where each restart interval of one JPEG strip begins, as absolute file offsets. Index
 * `intervalCount` answers the end sentinel (end of the entropy data + 2, so that interval i always
 * ends 2 bytes before start(i + 1), where its RST marker or the EOI sits).
 */
export interface McuStarts {
  /** Offsets of intervals first..last inclusive (last may be `intervalCount`). */
  range(first: number, last: number): Promise<number[]>;
  /** 'tag' when read from McuStarts (65426), 'scan' when found by scanning the stream. */
  readonly origin: 'tag' | 'scan';
}

/**
 * Reads only the entries a request needs from tag 65426 (and 65432 for the high words), so memory
 * does not grow with the level: a 200,000-row level has a 200,000-entry table we never load whole.
 */
export function mcuStartsFromTag(
  source: ByteSource, low: NdpiEntry, high: NdpiEntry | undefined, stripOffset: number, dataEnd: number, intervalCount: number, what: string,
): McuStarts {
  if (low.count < intervalCount) {
    throw new CorruptSlideError(`${what}: McuStarts (tag 65426) has ${low.count} entries for ${intervalCount} restart intervals`);
  }
  if (high && high.count < intervalCount) throw new CorruptSlideError(`${what}: McuStarts high words (tag 65432) has ${high.count} entries for ${intervalCount}`);
  return {
    origin: 'tag',
    async range(first, last) {
      const stop = Math.min(last, intervalCount - 1);
      const n = stop - first + 1;
      const lows = n > 0 ? await readValues(source, low, first, n) : [];
      const highs = n > 0 && high ? await readValues(source, high, first, n) : null;
      const out = lows.map((v, k) => stripOffset + v + (highs ? highs[k]! * 2 ** 32 : 0));
      if (last === intervalCount) out.push(dataEnd + 2);
      for (let k = 0; k < out.length; k++) {
        const v = out[k]!;
        if (v < stripOffset || v > dataEnd + 2 || (k > 0 && v <= out[k - 1]!)) {
          throw new CorruptSlideError(`${what}: McuStarts entry ${first + k} (offset ${v}) lies outside the JPEG data or out of order`);
        }
      }
      return out;
    },
  };
}

/** Upper bound on a scanned offset table (8 bytes per interval). */
const MAX_SCANNED_INTERVALS = 8 * 1024 * 1024;
const SCAN_CHUNK = 1 << 20;

/**
 * Fallback when tag 65426 is missing: one sequential pass over the strip in 1 MiB chunks finding
 * RST markers (FF D0–D7 cannot occur inside entropy data, which stuffs FF as FF 00).
 */
export async function mcuStartsByScan(
  source: ByteSource, dataStart: number, dataEnd: number, intervalCount: number, what: string,
): Promise<McuStarts> {
  if (intervalCount > MAX_SCANNED_INTERVALS) {
    throw new UnsupportedSlideError(`${what}: no McuStarts tag and ${intervalCount} restart intervals to find by scanning (limit ${MAX_SCANNED_INTERVALS})`);
  }
  const starts = new Float64Array(intervalCount + 1);
  starts[0] = dataStart;
  let found = 1;
  let prevFF = false;
  for (let at = dataStart; at < dataEnd && found < intervalCount; at += SCAN_CHUNK) {
    const chunk = await source.read(at, Math.min(SCAN_CHUNK, dataEnd - at));
    for (let i = 0; i < chunk.length && found < intervalCount; i++) {
      const b = chunk[i]!;
      if (prevFF && b >= 0xd0 && b <= 0xd7) starts[found++] = at + i + 1;
      prevFF = b === 0xff;
    }
  }
  if (found < intervalCount) throw new CorruptSlideError(`${what}: found ${found} of ${intervalCount} restart intervals in the JPEG data`);
  starts[intervalCount] = dataEnd + 2;
  return {
    origin: 'scan',
    async range(first, last) { return Array.from(starts.subarray(first, last + 1)); },
  };
}
