import { UnsupportedSlideError } from '../errors.ts';
import { no, ok, type Mpp, type SlideFormat } from './types.ts';
import { tiffDirectoryOf } from './tiff/tiff-directory.ts';
import { createTiffSlide } from './tiff/tiff-slide.ts';

/** Micrometres per OME length unit (OME schema UnitsLength); unknown units give null. */
const UM_PER_UNIT: Record<string, number> = { 'µm': 1, 'μm': 1, um: 1, nm: 1e-3, mm: 1e3, cm: 1e4, m: 1e6, 'Å': 1e-4, pm: 1e-6 };

/** Attributes of the first element `tag` in an XML string (enough of XML for OME's flat attributes). */
function firstElementAttributes(xml: string, tag: string): Record<string, string> | null {
  const m = new RegExp(`<(?:\\w+:)?${tag}\\b([^>]*)>`).exec(xml);
  if (!m) return null;
  const attrs: Record<string, string> = {};
  for (const a of m[1]!.matchAll(/([\w:]+)\s*=\s*"([^"]*)"/g)) attrs[a[1]!] = a[2]!;
  return attrs;
}

/** Physical pixel size of the first image in an OME-XML document, in µm, or null. */
export function omePhysicalSize(xml: string): Mpp | null {
  const p = firstElementAttributes(xml, 'Pixels');
  if (!p) return null;
  const size = (v: string | undefined, unit: string | undefined) => {
    const n = Number(v);
    const scale = UM_PER_UNIT[unit ?? 'µm'];
    return v !== undefined && Number.isFinite(n) && n > 0 && scale ? n * scale : null;
  };
  const x = size(p.PhysicalSizeX, p.PhysicalSizeXUnit);
  const y = size(p.PhysicalSizeY, p.PhysicalSizeYUnit) ?? x;
  return x !== null && y !== null ? { x, y } : null;
}

export function isOmeXml(description: string): boolean {
  return /<(\w+:)?OME\b/.test(description) && description.includes('openmicroscopy.org/Schemas/OME');
}

/**
 * OME-TIFF: OME-XML in the first ImageDescription; the first image's full resolution is IFD 0 and
 * its pyramid its SubIFDs (OME 6 / bioformats pyramids).
 */
export const omeTiff: SlideFormat = {
  name: 'ome-tiff',
  vendor: 'ome',
  async detect(probe) {
    const dir = await tiffDirectoryOf(probe);
    if (!dir) return no('not a TIFF file');
    if (!isOmeXml(dir.ifds[0]!.description)) return no('no OME-XML in the first ImageDescription');
    return ok();
  },
  async open(probe) {
    const dir = await tiffDirectoryOf(probe);
    if (!dir) throw new UnsupportedSlideError(`${probe.name}: not a TIFF file`);
    const first = dir.ifds[0]!;
    const levels = [first, ...first.subIfds].sort((a, b) => b.width - a.width);
    const xml = first.description;
    const mpp = omePhysicalSize(xml);
    const warnings: string[] = [];
    if (!mpp) warnings.push('no PhysicalSizeX/Y in the OME-XML: mpp unknown');
    if (first.subIfds.length === 0) warnings.push('no SubIFDs: the OME-TIFF has a single resolution level');
    if (first.samplesPerPixel === 1) warnings.push('first plane is single-channel: shown as grey');
    const objective = firstElementAttributes(xml, 'Objective');
    const objectivePower = Number(objective?.NominalMagnification) > 0 ? Number(objective!.NominalMagnification) : null;
    const properties: Record<string, string> = { 'openslide.vendor': 'ome', 'ome.xml': xml.length > 65536 ? `${xml.slice(0, 65536)}…` : xml };
    if (mpp) { properties['openslide.mpp-x'] = String(mpp.x); properties['openslide.mpp-y'] = String(mpp.y); }
    if (objectivePower !== null) properties['openslide.objective-power'] = String(objectivePower);
    return createTiffSlide({
      format: 'ome-tiff', vendor: 'ome', source: dir.source, levels, mpp, objectivePower,
      properties, associated: [], warnings,
    });
  },
};
