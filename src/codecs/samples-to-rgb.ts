import { UnsupportedSlideError } from '../errors.ts';
import type { RgbImage } from '../readers/types.ts';
import type { BlockContext } from './types.ts';

/** Bytes one block of raw samples should hold once decompressed. */
export function expectedSampleBytes(ctx: BlockContext): number {
  return ctx.width * ctx.height * ctx.samplesPerPixel * Math.ceil(ctx.bitsPerSample / 8);
}

/** Rejects sample layouts the raw-sample codecs (none, LZW, deflate) cannot turn into RGB, by name. */
export function checkSampleLayout(ctx: BlockContext): void {
  const why =
    ctx.bitsPerSample !== 8 ? `${ctx.bitsPerSample} bits per sample` :
    ctx.planarConfiguration !== 1 ? 'separate colour planes (PlanarConfiguration 2)' :
    ctx.sampleFormat !== 1 ? `sample format ${ctx.sampleFormat}` :
    ![1, 3, 4].includes(ctx.samplesPerPixel) ? `${ctx.samplesPerPixel} samples per pixel` :
    ctx.samplesPerPixel === 1 && ctx.photometric > 1 ? `photometric ${ctx.photometric} with one sample` :
    ctx.samplesPerPixel >= 3 && ctx.photometric !== 2 ? `photometric interpretation ${ctx.photometric} (only RGB is supported for uncompressed/LZW/deflate data)` :
    ctx.predictor !== 1 && ctx.predictor !== 2 ? `predictor ${ctx.predictor}` : null;
  if (why) throw new UnsupportedSlideError(`${ctx.name}: unsupported TIFF sample layout: ${why}`);
}

/** Undoes TIFF horizontal differencing (Predictor 2) for 8-bit samples, in place. */
export function undoHorizontalPredictor(data: Buffer, ctx: BlockContext): void {
  const spp = ctx.samplesPerPixel;
  const rowBytes = ctx.width * spp;
  const rows = Math.floor(data.length / rowBytes);
  for (let y = 0; y < rows; y++) {
    const row = y * rowBytes;
    for (let i = row + spp; i < row + rowBytes; i++) data[i] = (data[i]! + data[i - spp]!) & 0xff;
  }
}

/**
 * Interleaved 8-bit samples → RGB. Grey is replicated (WhiteIsZero inverted); a fourth sample is
 * taken as unassociated alpha and composited over white, matching OpenSlide's output over white.
 * A short block (a truncated last strip) is padded with white.
 */
export function samplesToRgb(samples: Buffer, ctx: BlockContext): RgbImage {
  if (ctx.predictor === 2) undoHorizontalPredictor(samples, ctx);
  const { width, height, samplesPerPixel: spp } = ctx;
  const n = width * height;
  const avail = Math.min(n, Math.floor(samples.length / spp));
  if (spp === 3) {
    if (samples.length === n * 3) return { width, height, data: samples };
    const data = Buffer.alloc(n * 3, 255);
    samples.copy(data, 0, 0, avail * 3);
    return { width, height, data };
  }
  const data = Buffer.alloc(n * 3, 255);
  if (spp === 1) {
    const invert = ctx.photometric === 0 ? 255 : 0;
    for (let i = 0; i < avail; i++) {
      const v = samples[i]! ^ invert;
      data[3 * i] = v; data[3 * i + 1] = v; data[3 * i + 2] = v;
    }
  } else {
    for (let i = 0; i < avail; i++) {
      const a = samples[4 * i + 3]!;
      for (let c = 0; c < 3; c++) data[3 * i + c] = Math.round((samples[4 * i + c]! * a + 255 * (255 - a)) / 255);
    }
  }
  return { width, height, data };
}
