import { CorruptSlideError, UnsupportedSlideError } from '../../errors.ts';

/**
 * The head of a baseline JPEG stream up to and including its single SOS segment: what we need
 * to cut a sub-image out of a huge restart-marked JPEG (NDPI levels) without decoding the rest.
 */
export interface JpegHeader {
  /** Bytes from SOI through the end of the SOS segment. */
  bytes: Buffer;
  /** Dimensions as the SOF states them (NDPI writes 0 or garbage when a level exceeds 65,535). */
  width: number;
  height: number;
  components: number;
  /** MCU size in pixels: 8 × the largest sampling factor. */
  mcuWidth: number;
  mcuHeight: number;
  /** MCUs per restart interval (DRI), 0 when the stream has no restart markers. */
  restartInterval: number;
  /** Offset in `bytes` of the SOF's 16-bit height (width follows). */
  sofDimensionsAt: number;
}

/** Largest header we accept: real ones are under 1 KiB (tables and a comment). */
export const MAX_JPEG_HEADER = 256 * 1024;

/**
 * Parses SOI … SOS. Accepts baseline and extended Huffman (SOF0/SOF1), 8-bit, one interleaved scan;
 * anything else is reported by name.
 * @throws CorruptSlideError when the markers are broken or the header is truncated.
 * @throws UnsupportedSlideError for progressive, lossless, arithmetic, 12-bit or multi-scan streams.
 */
export function parseJpegHeader(buf: Buffer, what: string): JpegHeader {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) throw new CorruptSlideError(`${what}: JPEG data does not start with SOI`);
  let at = 2;
  let sof: { width: number; height: number; components: number; mcuWidth: number; mcuHeight: number; dimsAt: number } | null = null;
  let restartInterval = 0;
  while (at + 4 <= buf.length) {
    if (buf[at] !== 0xff) throw new CorruptSlideError(`${what}: expected a JPEG marker at byte ${at}, found 0x${buf[at]!.toString(16)}`);
    const marker = buf[at + 1]!;
    if (marker === 0xff) { at++; continue; } // fill byte
    const length = buf.readUInt16BE(at + 2);
    if (length < 2 || at + 2 + length > buf.length) throw new CorruptSlideError(`${what}: JPEG header truncated in marker 0x${marker.toString(16)}`);
    const body = at + 4;
    if (marker === 0xc0 || marker === 0xc1) {
      if (buf[body] !== 8) throw new UnsupportedSlideError(`${what}: ${buf[body]}-bit JPEG is not supported`);
      const components = buf[body + 5]!;
      if (components !== 1 && components !== 3) throw new UnsupportedSlideError(`${what}: JPEG with ${components} components is not supported`);
      if (length < 8 + 3 * components) throw new CorruptSlideError(`${what}: SOF segment too short`);
      let maxH = 1;
      let maxV = 1;
      for (let c = 0; c < components; c++) {
        const sampling = buf[body + 7 + 3 * c]!;
        const h = sampling >> 4;
        const v = sampling & 15;
        if (h < 1 || h > 4 || v < 1 || v > 4) throw new CorruptSlideError(`${what}: bad JPEG sampling factors 0x${sampling.toString(16)}`);
        maxH = Math.max(maxH, h);
        maxV = Math.max(maxV, v);
      }
      sof = {
        height: buf.readUInt16BE(body + 1), width: buf.readUInt16BE(body + 3), components,
        mcuWidth: 8 * maxH, mcuHeight: 8 * maxV, dimsAt: body + 1,
      };
    } else if (marker >= 0xc2 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const kinds: Record<number, string> = { 0xc2: 'progressive', 0xc3: 'lossless' };
      throw new UnsupportedSlideError(`${what}: ${kinds[marker] ?? `SOF 0x${marker.toString(16)} (arithmetic or hierarchical)`} JPEG is not supported`);
    } else if (marker === 0xdd) {
      restartInterval = buf.readUInt16BE(body);
    } else if (marker === 0xda) {
      if (!sof) throw new CorruptSlideError(`${what}: JPEG SOS before SOF`);
      if (buf[body] !== sof.components) throw new UnsupportedSlideError(`${what}: non-interleaved JPEG scans are not supported`);
      const end = at + 2 + length;
      return {
        bytes: buf.subarray(0, end), width: sof.width, height: sof.height, components: sof.components,
        mcuWidth: sof.mcuWidth, mcuHeight: sof.mcuHeight, restartInterval, sofDimensionsAt: sof.dimsAt,
      };
    } else if (marker === 0xd9 || (marker >= 0xd0 && marker <= 0xd7)) {
      throw new CorruptSlideError(`${what}: unexpected JPEG marker 0x${marker.toString(16)} before SOS`);
    }
    at += 2 + length;
  }
  throw new CorruptSlideError(`${what}: JPEG header has no SOS within ${buf.length} bytes`);
}
