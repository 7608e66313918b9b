import { GeoTIFF } from 'geotiff';
import type { ByteSource } from '../../io/byte-source.ts';
import { CorruptSlideError, LaminaError } from '../../errors.ts';
import type { SlideProbe } from '../types.ts';
import { parseTiffHeader, readEntryTable, readEntryValues, type RawEntry, type TiffHeader } from './ifd-entries.ts';
import { GeotiffSource } from './geotiff-source.ts';
import { BlockTable } from './block-table.ts';

/** TIFF tag numbers Lamina reads (TIFF 6.0, TIFF/EP, Adobe and BigTIFF specs). */
export const Tag = {
  NewSubfileType: 254, ImageWidth: 256, ImageLength: 257, BitsPerSample: 258, Compression: 259,
  Photometric: 262, ImageDescription: 270, Make: 271, Model: 272, StripOffsets: 273, SamplesPerPixel: 277,
  RowsPerStrip: 278, StripByteCounts: 279, PlanarConfiguration: 284, Software: 305, DateTime: 306,
  Predictor: 317, TileWidth: 322, TileLength: 323, TileOffsets: 324, TileByteCounts: 325, SubIFDs: 330,
  ExtraSamples: 338, SampleFormat: 339, JPEGTables: 347, YCbCrSubsampling: 530, XResolution: 282,
  YResolution: 283, ResolutionUnit: 296, ICCProfile: 34675,
} as const;

/** Most IFDs (chain plus SubIFDs) one file may hold before we call it a loop or a hostile file. */
const MAX_IFDS = 1024;

/** One image file directory, with the values Lamina uses already decoded and checked. */
export interface TiffIfd {
  /** Position in the main IFD chain; SubIFDs carry their parent's index and `subIndex` ≥ 0. */
  index: number;
  subIndex: number;
  offset: number;
  width: number;
  height: number;
  isTiled: boolean;
  /** Tile size, or for strips the image width × RowsPerStrip (clamped to the height). */
  blockWidth: number;
  blockHeight: number;
  blocksAcross: number;
  blocksDown: number;
  compression: number;
  photometric: number;
  samplesPerPixel: number;
  bitsPerSample: number;
  planarConfiguration: number;
  predictor: number;
  sampleFormat: number;
  newSubfileType: number;
  description: string;
  jpegTables: Buffer | null;
  ycbcrSubsampling: [number, number];
  /** Offsets and byte counts of the tiles or strips, loaded lazily in bounded chunks. */
  blocks: BlockTable;
  subIfds: TiffIfd[];
  /** Raw tag table, for format modules that need a private tag (NDPI's 65420…). */
  entries: Map<number, RawEntry>;
  /** geotiff's view of the directory, for any other tag value (`await raw.loadValue(tag)`). */
  raw: { loadValue(tag: number): Promise<unknown>; hasTag(tag: number): boolean };
}

/** A TIFF file's structure, parsed once and shared by every format's `detect` and `open`. */
export interface TiffDirectory {
  header: TiffHeader;
  /** Main-chain IFDs in file order; SubIFDs hang off their parent's `subIfds`. */
  ifds: TiffIfd[];
  source: ByteSource;
}

/** Parses the IFD chain and SubIFDs of `source`. Throws CorruptSlideError on any structural fault. */
export async function parseTiffDirectory(source: ByteSource, head?: Buffer): Promise<TiffDirectory> {
  const header = parseTiffHeader(head ?? await source.read(0, Math.min(16, source.size)));
  if (!header) throw new CorruptSlideError(`${source.name}: not a TIFF file (no II*/MM* header)`);
  try {
    const geotiff = await GeoTIFF.fromSource(new GeotiffSource(source) as never);
    const seen = new Set<number>();
    const parse = async (offset: number, index: number, subIndex: number): Promise<{ ifd: TiffIfd; next: number }> => {
      if (seen.has(offset)) throw new CorruptSlideError(`${source.name}: IFD chain loops back to offset ${offset}`);
      if (seen.size >= MAX_IFDS) throw new CorruptSlideError(`${source.name}: more than ${MAX_IFDS} IFDs`);
      seen.add(offset);
      const { entries, nextIfdOffset } = await readEntryTable(source, header, offset);
      const raw = await geotiff.parser.parseFileDirectoryAt(offset);
      return { ifd: await describeIfd(source, header, entries, raw, offset, index, subIndex), next: nextIfdOffset };
    };
    const ifds: TiffIfd[] = [];
    let offset = header.firstIfdOffset;
    while (offset !== 0) {
      const { ifd, next } = await parse(offset, ifds.length, -1);
      ifds.push(ifd);
      const sub = ifd.entries.get(Tag.SubIFDs);
      if (sub) {
        const offsets = await readEntryValues(source, header.littleEndian, sub, 0, Math.min(sub.count, MAX_IFDS));
        for (let i = 0; i < offsets.length; i++) ifd.subIfds.push((await parse(offsets[i]!, ifd.index, i)).ifd);
      }
      offset = next;
    }
    if (ifds.length === 0) throw new CorruptSlideError(`${source.name}: TIFF has no image directory (first IFD offset is 0)`);
    return { header, ifds, source };
  } catch (err) {
    if (err instanceof LaminaError) throw err;
    throw new CorruptSlideError(`${source.name}: malformed TIFF structure: ${(err as Error).message}`, { cause: err });
  }
}

type GeoIfd = Awaited<ReturnType<GeoTIFF['parser']['parseFileDirectoryAt']>>;

async function describeIfd(source: ByteSource, header: TiffHeader, entries: Map<number, RawEntry>, ifd: GeoIfd, offset: number, index: number, subIndex: number): Promise<TiffIfd> {
  const name = `${source.name}: IFD ${index}${subIndex >= 0 ? ` SubIFD ${subIndex}` : ''}`;
  const num = async (tag: number, fallback: number): Promise<number> => {
    if (!ifd.hasTag(tag)) return fallback;
    const v = await ifd.loadValue(tag);
    const first = typeof v === 'number' || typeof v === 'bigint' ? v : (v as ArrayLike<number | bigint>)?.[0];
    return first === undefined ? fallback : Number(first);
  };
  const width = await num(Tag.ImageWidth, 0);
  const height = await num(Tag.ImageLength, 0);
  if (!(width >= 1 && height >= 1) || !Number.isSafeInteger(width) || !Number.isSafeInteger(height)) {
    throw new CorruptSlideError(`${name}: invalid image size ${width} × ${height}`);
  }
  const isTiled = entries.has(Tag.TileOffsets);
  let blockWidth: number, blockHeight: number;
  if (isTiled) {
    blockWidth = await num(Tag.TileWidth, 0);
    blockHeight = await num(Tag.TileLength, 0);
    // TIFF 6.0 asks for multiples of 16. We accept ≥ 8 (some writers ignore the rule) and bound the
    // other side in TiffImage; tinier tiles would turn one region read into 10⁴ decodes.
    if (!(blockWidth >= 8 && blockHeight >= 8 && blockWidth <= 65536 && blockHeight <= 65536)) {
      throw new CorruptSlideError(`${name}: invalid tile size ${blockWidth} × ${blockHeight}`);
    }
  } else {
    blockWidth = width;
    blockHeight = Math.min(height, Math.max(1, await num(Tag.RowsPerStrip, height)));
  }
  const blocksAcross = Math.ceil(width / blockWidth);
  const blocksDown = Math.ceil(height / blockHeight);
  const planarConfiguration = await num(Tag.PlanarConfiguration, 1);
  const samplesPerPixel = await num(Tag.SamplesPerPixel, 1);
  const offsetsEntry = entries.get(isTiled ? Tag.TileOffsets : Tag.StripOffsets);
  const countsEntry = entries.get(isTiled ? Tag.TileByteCounts : Tag.StripByteCounts);
  const blockCount = blocksAcross * blocksDown * (planarConfiguration === 2 ? samplesPerPixel : 1);
  const blocks = new BlockTable(source, header.littleEndian, name, offsetsEntry, countsEntry, blockCount);
  let description = '';
  if (ifd.hasTag(Tag.ImageDescription)) {
    const v = await ifd.loadValue(Tag.ImageDescription);
    description = (typeof v === 'string' ? v : '').replace(/\0+$/, '');
  }
  let jpegTables: Buffer | null = null;
  if (ifd.hasTag(Tag.JPEGTables)) {
    const v = await ifd.loadValue(Tag.JPEGTables) as ArrayLike<number>;
    jpegTables = Buffer.from(Uint8Array.from(v));
  }
  const ycc = ifd.hasTag(Tag.YCbCrSubsampling) ? await ifd.loadValue(Tag.YCbCrSubsampling) as ArrayLike<number> : [2, 2];
  return {
    index, subIndex, offset, width, height, isTiled, blockWidth, blockHeight, blocksAcross, blocksDown,
    compression: await num(Tag.Compression, 1),
    photometric: await num(Tag.Photometric, samplesPerPixel >= 3 ? 2 : 1),
    samplesPerPixel,
    bitsPerSample: await num(Tag.BitsPerSample, 1),
    planarConfiguration,
    predictor: await num(Tag.Predictor, 1),
    sampleFormat: await num(Tag.SampleFormat, 1),
    newSubfileType: await num(Tag.NewSubfileType, 0),
    description, jpegTables,
    ycbcrSubsampling: [Number(ycc[0] ?? 2), Number(ycc[1] ?? 2)],
    blocks, subIfds: [], entries,
    raw: ifd as unknown as TiffIfd['raw'],
  };
}

const parsed = new WeakMap<SlideProbe, Promise<TiffDirectory | null>>();

/**
 * The probe's TIFF directory, parsed on first use and shared by every format's `detect` and `open`
 * (OpenSlide's `_openslide_tifflike`). Resolves null when the file is not a TIFF at all; rejects
 * with CorruptSlideError when it is one but its structure is broken.
 */
export function tiffDirectoryOf(probe: SlideProbe): Promise<TiffDirectory | null> {
  let p = parsed.get(probe);
  if (!p) {
    const source = probe.source;
    p = !source || !parseTiffHeader(probe.head) ? Promise.resolve(null) : parseTiffDirectory(source, probe.head);
    parsed.set(probe, p);
  }
  return p;
}
