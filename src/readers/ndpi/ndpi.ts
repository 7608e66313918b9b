import type { ByteSource } from '../../io/byte-source.ts';
import { newCacheKey, sharedTileCache, type TileCache } from '../../io/tile-cache.ts';
import { CorruptSlideError, LaminaError, UnsupportedSlideError } from '../../errors.ts';
import { no, ok, type Detection, type Mpp, type Slide, type SlideFormat, type SlideProbe } from '../types.ts';
import { NdpiTag, TiffTag, readAscii, readNdpiDirectories, readNumber, readValues, type NdpiIfd } from './ndpi-directory.ts';
import { JpegStrip, newRestartReadStats, readJpegHeader, type RestartReadStats } from './jpeg-strip.ts';
import { mcuStartsByScan, mcuStartsFromTag } from './mcu-starts.ts';
import { planLevels } from './ndpi-levels.ts';
import { planRestartLayout } from './restart-markers.ts';
import { createNdpiSlide, type NdpiAssociated } from './ndpi-slide.ts';

/**
 * Hamamatsu NDPI: a classic TIFF whose pyramid levels are each one JPEG strip with restart
 * markers, read interval by interval (see restart-markers.ts). Sample: test3-DAPI-2-387.ndpi
 * (NDP.scan 2.5.89), four stored levels 3968 × 4864 … 496 × 608, a macro and a map.
 */
export const ndpi: SlideFormat = {
  name: 'ndpi',
  vendor: 'hamamatsu',
  detect: detectNdpi,
  open: (probe) => {
    if (!probe.source) throw new UnsupportedSlideError(`${probe.name}: NDPI slides are single files`);
    return openNdpi(probe.source);
  },
};

async function detectNdpi(probe: SlideProbe): Promise<Detection> {
  if (!probe.source || probe.head.length < 8) return no('not a file');
  if (probe.head.toString('latin1', 0, 4) !== 'II*\0') return no('not a little-endian classic TIFF');
  try {
    const [first] = await readNdpiDirectories(probe.source, 1);
    if (first!.entries.has(NdpiTag.formatFlag)) return ok();
    const software = await readAscii(probe.source, first!, TiffTag.software, 256);
    return software?.startsWith('NDP.scan') ? ok() : no('no NDPI format tag (65420) and Software is not NDP.scan');
  } catch (err) {
    return no(`TIFF directory unreadable: ${(err as Error).message}`);
  }
}

/** An opened NDPI slide; `stats` counts the restart intervals decoded so far. */
export type NdpiSlide = Slide & { readonly stats: RestartReadStats };

/**
 * Opens an NDPI file from any byte source.
 * @example const slide = await openNdpi(await FileSource.open('slide.ndpi')); slide.stats.intervalsDecoded
 */
export async function openNdpi(source: ByteSource, cache: TileCache = sharedTileCache): Promise<NdpiSlide> {
  const ifds = await readNdpiDirectories(source);
  const stats = newRestartReadStats();
  const warnings: string[] = [];
  const cacheKey = `ndpi-${newCacheKey()}`;
  const strips: JpegStrip[] = [];
  const levelIfds: NdpiIfd[] = [];
  const associated: NdpiAssociated[] = [];
  for (const ifd of ifds) {
    const lens = await readNumber(source, ifd, NdpiTag.sourceLens, 0);
    const focalPlane = await readNumber(source, ifd, NdpiTag.focalPlane, 0);
    if (lens > 0 && focalPlane === 0) {
      const strip = await openStrip(source, ifd, `${source.name}: directory ${ifd.index}`, cache, `${cacheKey}/${ifd.index}`, stats, warnings);
      strips.push(strip);
      levelIfds.push(ifd);
    } else if (lens === -1 || lens === -2) {
      const image = await describeAssociated(source, ifd, lens === -1 ? 'macro' : 'map', cache, `${cacheKey}/${ifd.index}`, stats, warnings);
      if (image) associated.push(image);
    }
  }
  if (strips.length === 0) throw new CorruptSlideError(`${source.name}: NDPI file has no pyramid level (no directory with a positive source lens and focal plane 0)`);
  const order = strips.map((s, i) => i).sort((a, b) => strips[b]!.layout.width - strips[a]!.layout.width);
  const base = levelIfds[order[0]!]!;
  const levels = planLevels(order.map((i) => strips[i]!));
  const stored = new Set(strips.map((s) => s.layout.width));
  const synthesised = levels.filter((l) => l.scale > 1).map((l) => `${l.width} × ${l.height}`);
  if (synthesised.length > 0) warnings.push(`levels ${synthesised.join(', ')} are not stored; made by downsampling (as OpenSlide does), ${stored.size} stored`);
  const properties = await readProperties(source, base);
  const mpp = await readMpp(source, base);
  if (!mpp) warnings.push('no resolution tags: microns per pixel unknown');
  const lens = await readNumber(source, base, NdpiTag.sourceLens, 0);
  return createNdpiSlide({
    source, levels, mpp, objectivePower: lens > 0 ? lens : null, properties, associated, warnings, stats, cache, cacheKey,
  });
}

async function openStrip(
  source: ByteSource, ifd: NdpiIfd, what: string, cache: TileCache, key: string, stats: RestartReadStats, warnings: string[],
): Promise<JpegStrip> {
  const compression = await readNumber(source, ifd, TiffTag.compression, 1);
  if (compression !== 7) throw new UnsupportedSlideError(`${what}: NDPI level with TIFF compression ${compression} (only JPEG, 7, is supported)`);
  const width = await readNumber(source, ifd, TiffTag.imageWidth);
  const height = await readNumber(source, ifd, TiffTag.imageLength);
  if (!(width >= 1 && height >= 1 && width <= 2 ** 31 && height <= 2 ** 31)) throw new CorruptSlideError(`${what}: bad image size ${width} × ${height}`);
  const offsets = ifd.entries.get(TiffTag.stripOffsets);
  const counts = ifd.entries.get(TiffTag.stripByteCounts);
  if (!offsets || !counts) throw new CorruptSlideError(`${what}: missing StripOffsets or StripByteCounts`);
  if (offsets.count !== 1) throw new UnsupportedSlideError(`${what}: NDPI level in ${offsets.count} strips (expected one JPEG)`);
  let [offset] = await readValues(source, offsets, 0, 1);
  let [length] = await readValues(source, counts, 0, 1);
  // Some writers keep the high words of the strip offset and length in 65324/65325 instead of
  // the value extensions; they apply only where the extension left the value below 4 GiB.
  if (offsets.high === 0 && ifd.entries.has(NdpiTag.offsetHigh)) offset! += (await readNumber(source, ifd, NdpiTag.offsetHigh)) * 2 ** 32;
  if (counts.high === 0 && ifd.entries.has(NdpiTag.byteCountHigh)) length! += (await readNumber(source, ifd, NdpiTag.byteCountHigh)) * 2 ** 32;
  if (!(offset! > 0 && length! > 4 && offset! + length! <= source.size)) {
    throw new CorruptSlideError(`${what}: JPEG strip ${offset}+${length} lies outside the file (${source.size} bytes)`);
  }
  const header = await readJpegHeader(source, offset!, length!, what);
  const sub = ifd.entries.get(TiffTag.ycbcrSubsampling);
  const tagH = sub ? (await readValues(source, sub, 0, 1))[0]! : 2;
  if (header.components === 3 && tagH * 8 !== header.mcuWidth) {
    warnings.push(`${what}: YCbCrSubsampling says ${tagH}×, the JPEG data says ${header.mcuWidth / 8}×; trusting the JPEG`);
  }
  const dataStart = offset! + header.bytes.length;
  const dataEnd = offset! + length! - 2;
  let starts = null;
  if (header.restartInterval > 0) {
    const { intervalCount } = planRestartLayout(header, width, height, what);
    const low = ifd.entries.get(NdpiTag.mcuStarts);
    if (low) {
      starts = mcuStartsFromTag(source, low, ifd.entries.get(NdpiTag.mcuStartsHigh), offset!, dataEnd, intervalCount, what);
    } else {
      starts = await mcuStartsByScan(source, dataStart, dataEnd, intervalCount, what);
      warnings.push(`${what}: no McuStarts tag (65426); restart markers found by scanning the JPEG`);
    }
  }
  return new JpegStrip(source, what, offset!, length!, header, width, height, starts, cache, key, stats);
}

async function describeAssociated(
  source: ByteSource, ifd: NdpiIfd, name: string, cache: TileCache, key: string, stats: RestartReadStats, warnings: string[],
): Promise<NdpiAssociated | null> {
  const what = `${source.name}: ${name}`;
  const width = await readNumber(source, ifd, TiffTag.imageWidth);
  const height = await readNumber(source, ifd, TiffTag.imageLength);
  const compression = await readNumber(source, ifd, TiffTag.compression, 1);
  if (compression === 7) {
    // Opened now (its header only) so quirks reach `info`; a broken macro does not stop the slide.
    try {
      const strip = await openStrip(source, ifd, what, cache, key, stats, warnings);
      return { name, width, height, read: () => strip.readRect(0, 0, strip.layout.width, strip.layout.height) };
    } catch (err) {
      if (!(err instanceof LaminaError)) throw err;
      warnings.push(`${name} image unreadable: ${err.message}`);
      return null;
    }
  }
  return { name, width, height, read: () => readUncompressed(source, ifd, what, width, height, compression) };
}

/** The map image: uncompressed 8-bit grey (or RGB) strips. */
async function readUncompressed(source: ByteSource, ifd: NdpiIfd, what: string, width: number, height: number, compression: number) {
  if (compression !== 1) throw new UnsupportedSlideError(`${what}: TIFF compression ${compression} is not supported for associated images`);
  const spp = await readNumber(source, ifd, TiffTag.samplesPerPixel, 1);
  if (spp !== 1 && spp !== 3) throw new UnsupportedSlideError(`${what}: ${spp} samples per pixel`);
  const offsets = ifd.entries.get(TiffTag.stripOffsets);
  const counts = ifd.entries.get(TiffTag.stripByteCounts);
  if (!offsets || !counts || offsets.count !== counts.count || offsets.count > 65536) throw new CorruptSlideError(`${what}: bad strip tags`);
  const starts = await readValues(source, offsets);
  const lengths = await readValues(source, counts);
  const need = width * height * spp;
  const samples = Buffer.alloc(need);
  let at = 0;
  for (let i = 0; i < starts.length && at < need; i++) {
    const n = Math.min(lengths[i]!, need - at);
    (await source.read(starts[i]!, n)).copy(samples, at);
    at += n;
  }
  if (at < need) throw new CorruptSlideError(`${what}: strips hold ${at} of ${need} bytes`);
  if (spp === 3) return { width, height, data: samples };
  const data = Buffer.allocUnsafe(width * height * 3);
  for (let i = 0; i < width * height; i++) data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = samples[i]!;
  return { width, height, data };
}

async function readMpp(source: ByteSource, ifd: NdpiIfd): Promise<Mpp | null> {
  const unit = await readNumber(source, ifd, TiffTag.resolutionUnit, 2);
  const xres = await readNumber(source, ifd, TiffTag.xResolution, 0);
  const yres = await readNumber(source, ifd, TiffTag.yResolution, 0);
  const perUnit = unit === 3 ? 10_000 : unit === 2 ? 25_400 : 0; // µm per cm or inch
  if (!(perUnit > 0 && xres > 0 && yres > 0 && Number.isFinite(xres) && Number.isFinite(yres))) return null;
  return { x: perUnit / xres, y: perUnit / yres };
}

async function readProperties(source: ByteSource, ifd: NdpiIfd): Promise<Record<string, string>> {
  const props: Record<string, string> = {};
  const ascii: Array<[string, number]> = [['tiff.Make', TiffTag.make], ['tiff.Model', TiffTag.model], ['tiff.Software', TiffTag.software], ['tiff.DateTime', TiffTag.dateTime]];
  for (const [key, tag] of ascii) {
    const v = await readAscii(source, ifd, tag, 4096);
    if (v) props[key] = v;
  }
  for (const [key, tag] of [['tiff.XResolution', TiffTag.xResolution], ['tiff.YResolution', TiffTag.yResolution]] as const) {
    if (ifd.entries.has(tag)) props[key] = String(await readNumber(source, ifd, tag));
  }
  const unit = await readNumber(source, ifd, TiffTag.resolutionUnit, 2);
  props['tiff.ResolutionUnit'] = unit === 3 ? 'centimeter' : unit === 2 ? 'inch' : String(unit);
  for (const [key, tag] of [['hamamatsu.SourceLens', NdpiTag.sourceLens], ['hamamatsu.XOffsetFromSlideCentre', NdpiTag.xOffset], ['hamamatsu.YOffsetFromSlideCentre', NdpiTag.yOffset]] as const) {
    if (ifd.entries.has(tag)) props[key] = String(await readNumber(source, ifd, tag));
  }
  const reference = await readAscii(source, ifd, NdpiTag.reference, 4096);
  if (reference) props['hamamatsu.Reference'] = reference;
  const map = await readAscii(source, ifd, NdpiTag.propertyMap, 1 << 20);
  for (const line of map?.split(/\r?\n/) ?? []) {
    const eq = line.indexOf('=');
    if (eq > 0) props[`hamamatsu.${line.slice(0, eq)}`] = line.slice(eq + 1);
  }
  return props;
}
