import { CorruptSlideError } from '../errors.ts';
import type { BlockContext, Codec } from './types.ts';
import { decodeWithSharp } from './sharp-decode.ts';

const SOI = 0xd8;
const EOI = 0xd9;

/**
 * Completes an abbreviated JPEG stream (TIFF tiles that carry no DQT/DHT) with the IFD's shared
 * JPEGTables: tables without their EOI, then the tile without its SOI, as libtiff feeds libjpeg.
 */
export function completeJpegStream(tile: Buffer, tables: Buffer | null): Buffer {
  if (!tables || tables.length < 4) return tile;
  let tablesEnd = tables.length;
  if (tables[tablesEnd - 2] === 0xff && tables[tablesEnd - 1] === EOI) tablesEnd -= 2;
  const tileStart = tile.length >= 2 && tile[0] === 0xff && tile[1] === SOI ? 2 : 0;
  return Buffer.concat([tables.subarray(0, tablesEnd), tile.subarray(tileStart)]);
}

/** True when the stream says its own colour space: a JFIF (APP0) or Adobe (APP14) segment before the scan. */
export function hasColourMarker(stream: Buffer): boolean {
  let p = 2;
  while (p + 4 <= stream.length && stream[p] === 0xff) {
    const marker = stream[p + 1]!;
    if (marker === 0xda || marker === EOI) break; // SOS: headers are over
    const len = stream.readUInt16BE(p + 2);
    if (marker === 0xe0 && stream.toString('latin1', p + 4, p + 8) === 'JFIF') return true;
    if (marker === 0xee && stream.toString('latin1', p + 4, p + 9) === 'Adobe') return true;
    p += 2 + len;
  }
  return false;
}

/** APP14 "Adobe" segment with transform 0: tells libjpeg the three components are RGB, not YCbCr. */
const ADOBE_RGB = Buffer.from([0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00]);

/**
 * TIFF compression 7. libjpeg guesses the colour space of a stream without a JFIF or Adobe marker
 * from its component ids, and ids 1, 2, 3 read as YCbCr. Aperio writes *RGB* JPEG tiles with ids
 * 1, 2, 3 under Photometric RGB (CMU-1-Small-Region.svs: white decodes as pink otherwise); libtiff,
 * and so OpenSlide, follows the Photometric tag and skips the conversion. We do the same by giving
 * such streams an Adobe transform-0 marker. Photometric YCbCr streams are left to libjpeg's default.
 */
export const jpeg: Codec = {
  name: 'jpeg',
  decode: (data, ctx) => decodeWithSharp(toLibjpegStream(data, ctx), 'JPEG', ctx.name),
  toLibvipsInput(data, ctx) {
    const stream = toLibjpegStream(data, ctx);
    const size = jpegFrameSize(stream);
    // a mosaic cell must be exactly one tile, or every tile after it would shift
    if (!size || size.width !== ctx.width || size.height !== ctx.height) {
      throw new CorruptSlideError(`${ctx.name}: JPEG frame is ${size ? `${size.width} × ${size.height}` : 'missing'}, expected ${ctx.width} × ${ctx.height}`);
    }
    return stream;
  },
};

/** Width and height from the stream's SOF marker (ITU-T T.81 B.2.2), or null if there is none. */
export function jpegFrameSize(stream: Buffer): { width: number; height: number } | null {
  let p = 2;
  while (p + 9 <= stream.length && stream[p] === 0xff) {
    const marker = stream[p + 1]!;
    if (marker === 0xda || marker === EOI) return null;
    // SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC)
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: stream.readUInt16BE(p + 5), width: stream.readUInt16BE(p + 7) };
    }
    p += 2 + stream.readUInt16BE(p + 2);
  }
  return null;
}

/** The tile as a complete JPEG stream whose colour space libjpeg will read as the TIFF says. */
function toLibjpegStream(data: Buffer, ctx: BlockContext): Buffer {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== SOI) {
    throw new CorruptSlideError(`${ctx.name}: JPEG data does not start with an SOI marker`);
  }
  const stream = completeJpegStream(data, ctx.jpegTables);
  if (ctx.photometric === 2 && ctx.samplesPerPixel === 3 && !hasColourMarker(stream)) {
    return Buffer.concat([stream.subarray(0, 2), ADOBE_RGB, stream.subarray(2)]);
  }
  return stream;
}
