import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FileSource, type ByteSource } from '../../io/byte-source.ts';
import { newCacheKey, sharedTileCache, type TileCache } from '../../io/tile-cache.ts';
import { LaminaError, UnsupportedSlideError } from '../../errors.ts';
import { no, ok, type Detection, type Mpp, type SlideFormat, type SlideProbe } from '../types.ts';
import { isDicomHead, readInstance, type DicomInstance } from './dicom-header.ts';
import { DicomImage } from './dicom-image.ts';
import { createDicomSlide, type DicomSlide } from './dicom-slide.ts';

/**
 * DICOM VL Whole Slide Microscopy: a series of instances, one per pyramid level plus label,
 * overview and thumbnail, given as a folder or as one of its files (siblings of the same series
 * are found in the same folder). Sample: CMU-1-Small-Region-dicom/ (wsi2dcm, 12 levels, TILED_FULL,
 * JPEG baseline, empty Basic Offset Tables).
 */
export const dicom: SlideFormat = {
  name: 'dicom',
  vendor: 'dicom',
  detect: detectDicom,
  open: openDicomProbe,
};

/** Files a series folder may hold; a larger folder is refused rather than scanned. */
const MAX_FILES = 4096;

async function detectDicom(probe: SlideProbe): Promise<Detection> {
  if (!probe.isDirectory) return isDicomHead(probe.head) ? ok() : no("no 'DICM' at byte 128");
  const files = await dicomFilesIn(probe.path).catch(() => []);
  return files.length > 0 ? ok() : no('folder holds no DICOM files');
}

async function dicomFilesIn(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  if (names.length > MAX_FILES) throw new UnsupportedSlideError(`${basename(dir)}: folder has ${names.length} entries (limit ${MAX_FILES})`);
  const out: string[] = [];
  for (const n of names) {
    const path = join(dir, n);
    const info = await stat(path).catch(() => null);
    if (!info?.isFile() || info.size < 132) continue;
    const src = await FileSource.open(path, n);
    try {
      if (isDicomHead(await src.read(0, 132))) out.push(path);
    } finally {
      await src.close();
    }
  }
  return out;
}

async function openDicomProbe(probe: SlideProbe): Promise<DicomSlide> {
  if (probe.isDirectory) {
    const files = await dicomFilesIn(probe.path);
    if (files.length === 0) throw new UnsupportedSlideError(`${probe.name}: folder holds no DICOM files`);
    return openDicomSeries(files.map((path) => ({ path })), probe.name);
  }
  const main = probe.source!;
  const first = await readInstance(main, probe.name);
  // Siblings of a real file on disk may hold the other levels of its series.
  const siblings: Array<{ path: string }> = [];
  const info = await stat(probe.path).catch(() => null);
  if (info?.isFile()) {
    for (const path of await dicomFilesIn(dirname(probe.path)).catch(() => [])) {
      if (basename(path) !== basename(probe.path)) siblings.push({ path });
    }
  }
  return openDicomSeries([{ instance: first }, ...siblings], probe.name, first.seriesUid);
}

/**
 * Opens the instances of one series. The series is the one of `seriesUid`, or of the largest
 * VOLUME instance; files of other series or other SOP classes are skipped (and closed).
 */
export async function openDicomSeries(
  inputs: Array<{ path?: string; instance?: DicomInstance }>, name: string, seriesUid?: string, cache: TileCache = sharedTileCache,
): Promise<DicomSlide> {
  const instances: DicomInstance[] = [];
  let refusal: LaminaError | null = null;
  const opened: ByteSource[] = [];
  try {
    for (const input of inputs) {
      if (input.instance) { instances.push(input.instance); continue; }
      const src = await FileSource.open(input.path!, basename(input.path!));
      opened.push(src);
      try {
        instances.push(await readInstance(src));
      } catch (err) {
        if (!(err instanceof LaminaError)) throw err;
        refusal ??= err; // a non-slide or broken file next to the slide does not stop the others
      }
    }
    const wanted = seriesUid ?? pickSeries(instances);
    const series = instances.filter((i) => i.seriesUid === wanted);
    if (series.length === 0) throw refusal ?? new UnsupportedSlideError(`${name}: no VL Whole Slide Microscopy instances`);
    for (const i of instances) if (!series.includes(i)) await i.source.close();
    return build(series, name, cache, instances.length - series.length);
  } catch (err) {
    for (const s of opened) await s.close().catch(() => {});
    for (const i of instances) await i.source.close().catch(() => {});
    throw err;
  }
}

function pickSeries(instances: DicomInstance[]): string {
  let best: DicomInstance | null = null;
  for (const i of instances) {
    if (!best || i.totalColumns * i.totalRows > best.totalColumns * best.totalRows) best = i;
  }
  return best?.seriesUid ?? '';
}

const ASSOCIATED: Record<string, string> = { LABEL: 'label', OVERVIEW: 'macro', THUMBNAIL: 'thumbnail' };

function build(series: DicomInstance[], name: string, cache: TileCache, skipped: number): DicomSlide {
  const warnings: string[] = [];
  if (skipped > 0) warnings.push(`${skipped} DICOM file(s) of other series or not slides were ignored`);
  const key = `dicom-${newCacheKey()}`;
  const volumes: DicomInstance[] = [];
  const associated = new Map<string, DicomInstance>();
  for (const inst of series) {
    const flavour = inst.imageType[2];
    if (flavour === undefined) {
      warnings.push(`${inst.name}: ImageType missing; taken as a pyramid level`);
      volumes.push(inst);
    } else if (flavour === 'VOLUME') volumes.push(inst);
    else if (ASSOCIATED[flavour] && !associated.has(ASSOCIATED[flavour]!)) associated.set(ASSOCIATED[flavour]!, inst);
  }
  if (volumes.length === 0) throw new UnsupportedSlideError(`${name}: the series has no VOLUME instance (only ${[...associated.keys()].join(', ') || 'nothing'})`);
  // A level split over several files (a concatenation) is one level: its parts in frame order.
  const groups = new Map<string, DicomInstance[]>();
  for (const v of volumes) {
    const id = v.concatenationUid ?? `instance:${groups.size}:${v.name}`;
    groups.set(id, [...(groups.get(id) ?? []), v]);
  }
  const units = [...groups.values()].map((parts) => parts.sort((a, b) => a.concatenationFrameOffset - b.concatenationFrameOffset));
  units.sort((a, b) => b[0]!.totalColumns - a[0]!.totalColumns || b[0]!.totalRows - a[0]!.totalRows);
  const levels: DicomInstance[][] = [];
  for (const u of units) {
    const prev = levels[levels.length - 1]?.[0];
    if (prev && prev.totalColumns === u[0]!.totalColumns && prev.totalRows === u[0]!.totalRows) {
      warnings.push(`${u[0]!.name}: same size as ${prev.name} (another focal plane or optical path); not used`);
      continue;
    }
    levels.push(u);
  }
  const images = levels.map((parts, i) => new DicomImage(parts, cache, `${key}/L${i}`, warnings));
  const base = levels[0]![0]!;
  const mpp = pickMpp(base, warnings);
  const objectivePower = levels.map((l) => l[0]!.objectivePower).find((p) => p !== null) ?? null;
  const properties: Record<string, string> = { 'dicom.SeriesInstanceUID': base.seriesUid, 'dicom.TransferSyntaxUID': base.transferSyntax, 'dicom.PhotometricInterpretation': base.photometric };
  for (const [k, v] of Object.entries(base.attributes)) properties[`dicom.${k}`] = v;
  if (base.photometric === 'RGB' && base.transferSyntax.startsWith('1.2.840.10008.1.2.4.5')) {
    warnings.push('PhotometricInterpretation says RGB for JPEG frames; the colour space is taken from the JPEG data (JFIF/Adobe markers)');
  }
  const assoc = [...associated.entries()].map(([n, inst]) => ({ name: n, image: new DicomImage([inst], cache, `${key}/A:${n}`, warnings) }));
  return createDicomSlide({ name, images, mpp, objectivePower, properties, associated: assoc, warnings, cache, cacheKey: key, sources: series.map((s) => s.source) });
}

/** PixelSpacing (mm) of level 0 → µm; else ImagedVolumeWidth/Height ÷ matrix size; else unknown. */
function pickMpp(base: DicomInstance, warnings: string[]): Mpp | null {
  if (base.pixelSpacing) return { x: base.pixelSpacing[1] * 1000, y: base.pixelSpacing[0] * 1000 };
  if (base.imagedVolume) {
    warnings.push('PixelSpacing missing; microns per pixel computed from ImagedVolumeWidth/Height');
    return { x: (base.imagedVolume[0] * 1000) / base.totalColumns, y: (base.imagedVolume[1] * 1000) / base.totalRows };
  }
  warnings.push('PixelSpacing and ImagedVolumeWidth/Height missing: microns per pixel unknown');
  return null;
}
