import { createRequire } from 'node:module';
import { CorruptSlideError, UnsupportedSlideError } from '../errors.ts';
import type { Codec } from './types.ts';

interface J2KDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  decode(): void;
  getFrameInfo(): { width: number; height: number; bitsPerSample: number; componentCount: number; isSigned: boolean };
  delete?(): void;
}
interface OpenJpegModule { J2KDecoder: new () => J2KDecoder }

let decoderPromise: Promise<J2KDecoder> | null = null;

/**
 * One OpenJPEG (WebAssembly) decoder for the process, created on first use. After a decode error
 * the Emscripten module may be in an aborted state, so it is dropped and rebuilt on the next tile.
 */
function getDecoder(): Promise<J2KDecoder> {
  if (!decoderPromise) {
    decoderPromise = (async () => {
      // the package ships CommonJS factories; the decode-only build is a third of the size
      const require = createRequire(import.meta.url);
      const factory = require('@cornerstonejs/codec-openjpeg/decodewasmjs') as (arg: object) => Promise<OpenJpegModule>;
      // OpenJPEG logs every tile header at INFO level through Emscripten's print hooks
      const module = await factory({ print: () => {}, printErr: () => {} });
      return new module.J2KDecoder();
    })();
    decoderPromise.catch(() => { decoderPromise = null; });
  }
  return decoderPromise;
}

/** Most pixels one codestream may declare: the WebAssembly heap grows to fit and never shrinks. */
const MAX_J2K_PIXELS = 1 << 24;

/**
 * Reads the SIZ marker segment (ITU-T T.800 A.5.1) that must follow SOC, and refuses a codestream
 * whose declared size or component count is out of bounds before OpenJPEG allocates for it.
 */
export function checkCodestreamSize(data: Buffer, name: string): void {
  if (data.length < 42 || data.readUInt16BE(0) !== 0xff4f || data.readUInt16BE(2) !== 0xff51) {
    throw new CorruptSlideError(`${name}: JPEG 2000 data does not start with SOC and SIZ markers`);
  }
  const width = data.readUInt32BE(8) - data.readUInt32BE(16);
  const height = data.readUInt32BE(12) - data.readUInt32BE(20);
  const components = data.readUInt16BE(40);
  if (!(width >= 1 && height >= 1 && width * height <= MAX_J2K_PIXELS) || components < 1 || components > 4) {
    throw new CorruptSlideError(`${name}: JPEG 2000 codestream declares ${width} × ${height} pixels with ${components} components (limit ${MAX_J2K_PIXELS} pixels, 4 components)`);
  }
}

/** Full-range YCbCr → RGB (JFIF / ITU-R BT.601), as OpenSlide converts Aperio 33003 tiles. */
export function ycbcrToRgbInPlace(p: Uint8Array): void {
  for (let i = 0; i + 2 < p.length; i += 3) {
    const y = p[i]!, cb = p[i + 1]! - 128, cr = p[i + 2]! - 128;
    p[i] = clamp(y + 1.402 * cr);
    p[i + 1] = clamp(y - 0.344136 * cb - 0.714136 * cr);
    p[i + 2] = clamp(y + 1.772 * cb);
  }
}
const clamp = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/**
 * Aperio JPEG 2000 tiles: compression 33003 (YCbCr components) and 33005 (RGB). Each tile is a raw
 * J2K codestream decoded by OpenJPEG (@cornerstonejs/codec-openjpeg).
 */
export const jp2k: Codec = {
  name: 'jp2k',
  async decode(data, ctx) {
    checkCodestreamSize(data, ctx.name);
    const decoder = await getDecoder();
    let frame: ReturnType<J2KDecoder['getFrameInfo']>;
    let pixels: Buffer;
    try {
      decoder.getEncodedBuffer(data.length).set(data);
      decoder.decode();
      frame = decoder.getFrameInfo();
      if (frame.width * frame.height > 1 << 26) throw new Error(`decoded size ${frame.width} × ${frame.height} is too large`);
      // copy out of the WebAssembly heap, which the next decode reuses
      pixels = Buffer.from(decoder.getDecodedBuffer());
    } catch (err) {
      decoderPromise = null;
      const message = err instanceof Error ? err.message : `OpenJPEG error ${String(err)}`;
      throw new CorruptSlideError(`${ctx.name}: JPEG 2000 data is corrupt: ${message}`, { cause: err });
    }
    const { width, height, componentCount, bitsPerSample } = frame;
    if (bitsPerSample !== 8 || (componentCount !== 3 && componentCount !== 1)) {
      throw new UnsupportedSlideError(`${ctx.name}: unsupported JPEG 2000 layout: ${componentCount} components of ${bitsPerSample} bits`);
    }
    if (pixels.length < width * height * componentCount) throw new CorruptSlideError(`${ctx.name}: JPEG 2000 decoder returned ${pixels.length} bytes for ${width} × ${height}`);
    if (componentCount === 1) {
      const rgb = Buffer.allocUnsafe(width * height * 3);
      for (let i = 0; i < width * height; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = pixels[i]!;
      return { width, height, data: rgb };
    }
    if (ctx.compression === 33003) ycbcrToRgbInPlace(pixels);
    return { width, height, data: pixels.subarray(0, width * height * 3) };
  },
};
