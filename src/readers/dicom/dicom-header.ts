import dicomParser, { type DataSet } from 'dicom-parser';
import type { ByteSource } from '../../io/byte-source.ts';
import { CorruptSlideError, UnsupportedSlideError } from '../../errors.ts';

/** VL Whole Slide Microscopy Image Storage. */
export const WSI_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.77.1.6';

/** A few SOP class names for messages about files that are DICOM but not slides. */
const SOP_NAMES: Record<string, string> = {
  '1.2.840.10008.5.1.4.1.1.2': 'CT Image Storage',
  '1.2.840.10008.5.1.4.1.1.4': 'MR Image Storage',
  '1.2.840.10008.5.1.4.1.1.7': 'Secondary Capture Image Storage',
  '1.2.840.10008.5.1.4.1.1.1': 'Computed Radiography Image Storage',
  '1.2.840.10008.5.1.4.1.1.77.1.2': 'VL Microscopic Image Storage',
  '1.2.840.10008.5.1.4.1.1.66.4': 'Segmentation Storage',
  '1.2.840.10008.5.1.4.1.1.88.33': 'Comprehensive SR Storage',
};

/** Where a frame sits in the total pixel matrix (0-based pixels), for TILED_SPARSE instances. */
export interface FramePosition { column: number; row: number }

/** What Lamina needs from one DICOM instance, taken from the data set before its Pixel Data. */
export interface DicomInstance {
  name: string;
  source: ByteSource;
  sopClassUid: string;
  seriesUid: string;
  transferSyntax: string;
  /** ImageType values (e.g. DERIVED, PRIMARY, VOLUME, RESAMPLED); empty when the attribute is missing. */
  imageType: string[];
  /** Frame (tile) size. */
  columns: number;
  rows: number;
  frames: number;
  /** Total pixel matrix; the frame size when the attributes are missing (single-frame images). */
  totalColumns: number;
  totalRows: number;
  samplesPerPixel: number;
  photometric: string;
  planarConfiguration: number;
  bitsAllocated: number;
  organization: string;
  /** ConcatenationUID (0020,9161): the instance is one part of a level split over several files. */
  concatenationUid: string | null;
  /** ConcatenationFrameOffsetNumber (0020,9228): frames of the earlier parts. */
  concatenationFrameOffset: number;
  /** PixelSpacing in mm: [row spacing (y), column spacing (x)]; null when absent. */
  pixelSpacing: [number, number] | null;
  /** ImagedVolumeWidth/Height in mm, a fallback for pixel spacing. */
  imagedVolume: [number, number] | null;
  objectivePower: number | null;
  /** Per-frame positions (TILED_SPARSE); null for TILED_FULL. */
  positions: FramePosition[] | null;
  /** Offset of the Pixel Data value and its length (-1 when undefined: encapsulated). */
  pixelDataOffset: number;
  pixelDataLength: number;
  /** A few attributes for `lamina info`. */
  attributes: Record<string, string>;
}

/** A header (everything before Pixel Data) larger than this is refused; per-frame groups of 10⁵ tiles fit. */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;
/** Frames one instance may declare. */
const MAX_FRAMES = 10_000_000;

/** True when the file starts with a DICOM Part 10 preamble ('DICM' at byte 128). */
export function isDicomHead(head: Buffer): boolean {
  return head.length >= 132 && head.toString('latin1', 128, 132) === 'DICM';
}

/**
 * Parses the data set up to Pixel Data with dicom-parser, reading the file head in growing chunks
 * so a multi-gigabyte level costs only its header.
 * @throws UnsupportedSlideError for a DICOM that is not a whole-slide image; CorruptSlideError for broken ones.
 */
export async function readInstance(source: ByteSource, name = source.name): Promise<DicomInstance> {
  if (source.size < 132 || !isDicomHead(await source.read(0, 132))) throw new UnsupportedSlideError(`${name}: not a DICOM Part 10 file (no DICM at byte 128)`);
  let want = Math.min(source.size, 64 * 1024);
  for (;;) {
    const buf = await source.read(0, want);
    let ds: DataSet | null = null;
    let failure: unknown = null;
    try {
      ds = dicomParser.parseDicom(new Uint8Array(buf.buffer, buf.byteOffset, buf.length), { untilTag: 'x7fe00010' });
    } catch (err) {
      failure = err;
    }
    if (ds?.elements.x7fe00010) return describe(ds, source, name);
    if (want >= source.size || want >= MAX_HEADER_BYTES) {
      const sop = ds?.string('x00080016');
      if (sop && sop !== WSI_SOP_CLASS) throw notASlide(name, sop);
      const why = failure ? `: ${String((failure as Error)?.message ?? failure).split('\n')[0]}` : '';
      throw new CorruptSlideError(`${name}: DICOM data set has no Pixel Data within ${want} bytes${why}`);
    }
    want = Math.min(source.size, MAX_HEADER_BYTES, want * 4);
  }
}

function notASlide(name: string, sop: string): UnsupportedSlideError {
  return new UnsupportedSlideError(`${name}: DICOM SOP class ${sop}${SOP_NAMES[sop] ? ` (${SOP_NAMES[sop]})` : ''} is not VL Whole Slide Microscopy Image Storage`);
}

function describe(ds: DataSet, source: ByteSource, name: string): DicomInstance {
  const sop = ds.string('x00080016') ?? ds.string('x00020002') ?? '';
  if (sop !== WSI_SOP_CLASS) throw notASlide(name, sop || '(missing)');
  // The VR is given, not read: implicit-VR data sets carry none.
  const int = (tag: string, vr: 'US' | 'UL' | 'IS', what: string, min = 1, max = 2 ** 31): number => {
    const v = vr === 'IS' ? ds.intString(tag) : vr === 'US' ? ds.uint16(tag) : ds.uint32(tag);
    if (v === undefined || !Number.isInteger(v) || v < min || v > max) throw new CorruptSlideError(`${name}: ${what} is ${v ?? 'missing'}`);
    return v;
  };
  const columns = int('x00280011', 'US', 'Columns (0028,0011)', 1, 65535);
  const rows = int('x00280010', 'US', 'Rows (0028,0010)', 1, 65535);
  const frames = ds.elements.x00280008 ? int('x00280008', 'IS', 'NumberOfFrames (0028,0008)', 1, MAX_FRAMES) : 1;
  const totalColumns = ds.elements.x00480006 ? int('x00480006', 'UL', 'TotalPixelMatrixColumns (0048,0006)') : columns;
  const totalRows = ds.elements.x00480007 ? int('x00480007', 'UL', 'TotalPixelMatrixRows (0048,0007)') : rows;
  const pixel = ds.elements.x7fe00010!;
  const imageType = [];
  for (let i = 0; i < (ds.numStringValues('x00080008') ?? 0); i++) imageType.push((ds.string('x00080008', i) ?? '').toUpperCase());
  const spacing = sharedPixelSpacing(ds);
  const vw = ds.float('x00480001');
  const vh = ds.float('x00480002');
  const attributes: Record<string, string> = {};
  for (const [key, tag] of [['Manufacturer', 'x00080070'], ['ManufacturerModelName', 'x00081090'], ['SoftwareVersions', 'x00181020'],
    ['ContainerIdentifier', 'x00400512'], ['SeriesDescription', 'x0008103e'], ['StudyInstanceUID', 'x0020000d']] as const) {
    const v = ds.string(tag);
    if (v) attributes[key] = v;
  }
  return {
    name, source, sopClassUid: sop,
    seriesUid: ds.string('x0020000e') ?? '',
    transferSyntax: ds.string('x00020010') ?? '1.2.840.10008.1.2',
    imageType, columns, rows, frames, totalColumns, totalRows,
    samplesPerPixel: ds.uint16('x00280002') ?? 1,
    photometric: ds.string('x00280004') ?? '',
    planarConfiguration: ds.uint16('x00280006') ?? 0,
    bitsAllocated: ds.uint16('x00280100') ?? 8,
    organization: ds.string('x00209311') ?? '',
    concatenationUid: ds.string('x00209161') ?? null,
    concatenationFrameOffset: ds.uint32('x00209228') ?? 0,
    pixelSpacing: spacing,
    imagedVolume: vw && vh && vw > 0 && vh > 0 ? [vw, vh] : null,
    objectivePower: objectivePower(ds),
    positions: ds.elements.x52009230 ? framePositions(ds, frames, name) : null,
    pixelDataOffset: pixel.dataOffset,
    pixelDataLength: pixel.hadUndefinedLength || pixel.length === 0xffffffff ? -1 : pixel.length,
    attributes,
  };
}

function sharedPixelSpacing(ds: DataSet): [number, number] | null {
  const shared = ds.elements.x52009229?.items?.[0]?.dataSet;
  const measures = shared?.elements.x00289110?.items?.[0]?.dataSet;
  const from = measures ?? ds; // some writers put PixelSpacing at the top level
  const y = from.floatString('x00280030', 0);
  const x = from.floatString('x00280030', 1);
  return y && x && y > 0 && x > 0 && Number.isFinite(x) && Number.isFinite(y) ? [y, x] : null;
}

function objectivePower(ds: DataSet): number | null {
  for (const item of ds.elements.x00480105?.items ?? []) {
    const v = item.dataSet?.floatString('x00480112');
    if (v && v > 0) return v;
  }
  return null;
}

/** PlanePositionSlideSequence of every frame (TILED_SPARSE); positions are 1-based in the file. */
function framePositions(ds: DataSet, frames: number, name: string): FramePosition[] | null {
  const items = ds.elements.x52009230!.items ?? [];
  if (items.length !== frames) throw new CorruptSlideError(`${name}: PerFrameFunctionalGroupsSequence has ${items.length} items for ${frames} frames`);
  const out: FramePosition[] = [];
  for (const [i, item] of items.entries()) {
    const pos = item.dataSet?.elements.x0048021a?.items?.[0]?.dataSet;
    const column = pos?.int32('x0048021e');
    const row = pos?.int32('x0048021f');
    if (column === undefined || row === undefined) {
      if (i === 0) return null; // no plane positions at all: frames are in TILED_FULL order
      throw new CorruptSlideError(`${name}: frame ${i + 1} has no PlanePositionSlideSequence`);
    }
    out.push({ column: column - 1, row: row - 1 });
  }
  return out;
}
