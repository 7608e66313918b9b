import sharp from 'sharp';
import { CorruptSlideError } from '../errors.ts';
import type { RgbImage } from '../readers/types.ts';

// libvips' operation cache keeps recent results (up to 50 MB) for re-use; tiles are decoded once and
// kept in our own byte-bounded tile cache instead, so the second cache only costs RSS.
sharp.cache(false);

/**
 * Decodes a complete JPEG/WebP/PNG stream with libvips into 8-bit RGB; alpha is flattened onto
 * white (out-of-image pixels are white everywhere in Lamina).
 */
export async function decodeWithSharp(data: Buffer, what: string, name: string): Promise<RgbImage> {
  try {
    // failOn 'error': libjpeg warnings (a few extraneous bytes, a short last MCU row) are tolerated
    // as OpenSlide tolerates them; real decode errors still throw. The plain decode is the common
    // case (3-channel JPEG tiles) and skips two pipeline stages; anything else goes the long way.
    const options = { failOn: 'error', limitInputPixels: 1 << 24 } as const;
    let { data: pixels, info } = await sharp(data, options).raw().toBuffer({ resolveWithObject: true });
    if (info.channels === 3) return { width: info.width, height: info.height, data: pixels };
    if (info.channels !== 1) {
      ({ data: pixels, info } = await sharp(data, options).flatten({ background: '#ffffff' }).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true }));
      if (info.channels === 3) return { width: info.width, height: info.height, data: pixels };
    }
    // grey: replicate
    const n = info.width * info.height;
    const rgb = Buffer.allocUnsafe(n * 3);
    for (let i = 0; i < n; i++) {
      const v = pixels[i * info.channels]!;
      rgb[3 * i] = v; rgb[3 * i + 1] = v; rgb[3 * i + 2] = v;
    }
    return { width: info.width, height: info.height, data: rgb };
  } catch (err) {
    throw new CorruptSlideError(`${name}: ${what} data is corrupt: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
}
