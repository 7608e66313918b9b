import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { FileSource, type ByteSource } from '../io/byte-source.ts';
import { CorruptSlideError, LaminaError, UnsupportedSlideError } from '../errors.ts';
import type { Slide, SlideFormat, SlideProbe } from './types.ts';
import { aperio } from './aperio.ts';
import { omeTiff } from './ome-tiff.ts';
import { genericTiff } from './generic-tiff.ts';
import { ndpi } from './ndpi/ndpi.ts';
import { dicom } from './dicom/dicom.ts';

/** Bytes of the file head every `detect` sees. */
const HEAD_BYTES = 64 * 1024;

/**
 * Formats in detection order (OpenSlide's `formats[]`): vendor formats first, generic TIFF last as
 * the fallback, since any tiled TIFF (an NDPI, an OME-TIFF) would also pass its test. A detect that
 * throws (a TIFF whose structure is broken) does not stop the others; if none accepts the file,
 * that error is what `openSlide` throws. A new format goes anywhere before `genericTiff`.
 */
export const formats: SlideFormat[] = [
  aperio,
  omeTiff,
  ndpi,
  dicom,
  genericTiff,
];

/** Builds the probe for a path: a folder (for DICOM series) or a file opened with its head read. */
export async function probePath(path: string): Promise<SlideProbe> {
  const name = basename(path.replace(/[\\/]+$/, '')) || path;
  const info = await stat(path);
  if (info.isDirectory()) return { path, name, isDirectory: true, source: null, head: Buffer.alloc(0) };
  return probeSource(await FileSource.open(path, name), path);
}

/** Builds the probe for an already opened source (in-memory slides, tests, HTTP range sources). */
export async function probeSource(source: ByteSource, path = source.name): Promise<SlideProbe> {
  const head = await source.read(0, Math.min(HEAD_BYTES, source.size));
  return { path, name: source.name, isDirectory: false, source, head };
}

/**
 * Picks the first format whose `detect` accepts the probe. When none does, the error lists every
 * format's reason; a file that is a TIFF but structurally broken gets the CorruptSlideError itself.
 */
export async function detectFormat(probe: SlideProbe): Promise<SlideFormat> {
  if (!probe.isDirectory && probe.source && probe.source.size === 0) {
    throw new UnsupportedSlideError(`${probe.name}: empty file (0 bytes)`);
  }
  const reasons: string[] = [];
  let corrupt: LaminaError | null = null;
  for (const format of formats) {
    try {
      const d = await format.detect(probe);
      if (d.ok) return format;
      reasons.push(`${format.name}: ${d.reason}`);
    } catch (err) {
      const e = err instanceof LaminaError ? err : new CorruptSlideError(`${probe.name}: ${(err as Error).message}`, { cause: err });
      corrupt ??= e;
      reasons.push(`${format.name}: ${e.message}`);
    }
  }
  if (corrupt) throw corrupt;
  throw new UnsupportedSlideError(`${probe.name}: not a supported slide format (${reasons.join('; ')})`);
}

/** Opens a probed slide; the slide owns the probe's source afterwards and closes it on failure. */
export async function openProbe(probe: SlideProbe): Promise<Slide> {
  try {
    const format = await detectFormat(probe);
    return await format.open(probe);
  } catch (err) {
    await probe.source?.close().catch(() => {});
    if (err instanceof LaminaError) throw err;
    throw new CorruptSlideError(`${probe.name}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

/**
 * Opens a whole-slide image by content, whatever its name.
 * @example
 *   const slide = await openSlide('CMU-1.svs');
 *   const tile = await slide.readRegion(0, 0, 0, 512, 512); // RGB, 512 × 512
 *   await slide.close();
 * @throws UnsupportedSlideError (not a slide / unsupported feature, named), CorruptSlideError (broken file).
 */
export async function openSlide(path: string): Promise<Slide> {
  return openProbe(await probePath(path));
}

/** Opens a slide from any ByteSource (MemorySource in tests, HTTP range sources). */
export async function openSlideSource(source: ByteSource): Promise<Slide> {
  let probe: SlideProbe;
  try {
    probe = await probeSource(source);
  } catch (err) {
    await source.close();
    throw err;
  }
  return openProbe(probe);
}
