import { UnsupportedSlideError } from '../errors.ts';
import { no, ok, type Mpp, type SlideFormat } from './types.ts';
import { Tag, tiffDirectoryOf, type TiffIfd } from './tiff/tiff-directory.ts';
import { createTiffSlide } from './tiff/tiff-slide.ts';

/** Coarsest pixel size taken as a microscope scan, in µm: macro cameras sit near 20–50 µm/px. */
const MAX_PLAUSIBLE_MPP = 100;

/**
 * Physical pixel size from XResolution/YResolution, trusted only with ResolutionUnit centimetre:
 * inch units are nearly always a writer's 72-dpi default, not a scan resolution.
 */
export async function mppFromResolution(ifd: TiffIfd): Promise<Mpp | null> {
  if (!ifd.raw.hasTag(Tag.ResolutionUnit) || !ifd.raw.hasTag(Tag.XResolution) || !ifd.raw.hasTag(Tag.YResolution)) return null;
  const unit = Number(await ifd.raw.loadValue(Tag.ResolutionUnit));
  if (unit !== 3) return null;
  const rational = async (tag: number) => {
    const v = await ifd.raw.loadValue(tag) as ArrayLike<number>;
    return Number(v[0]) / Number(v[1]);
  };
  const x = 10000 / await rational(Tag.XResolution);
  const y = 10000 / await rational(Tag.YResolution);
  // a writer's 72 dpi default converted to centimetres (boxes.tiff: 352.8 µm/px) is not a scan
  return Number.isFinite(x) && Number.isFinite(y) && x > 0 && y > 0 && x <= MAX_PLAUSIBLE_MPP && y <= MAX_PLAUSIBLE_MPP ? { x, y } : null;
}

/**
 * Pyramid levels of a generic tiled TIFF: as OpenSlide's generic-tiff driver, every tiled IFD of
 * the main chain, largest first; when the file keeps its reductions as SubIFDs of the first image
 * (libvips `--subifd`, OME-style), those are used instead.
 */
export function genericLevels(ifds: TiffIfd[]): TiffIfd[] {
  const first = ifds[0]!;
  const subs = first.subIfds.filter((s) => s.isTiled && s.width < first.width);
  const chain = ifds.filter((ifd) => ifd.isTiled);
  const levels = chain.length === 1 && subs.length > 0 ? [first, ...subs] : chain;
  return [...levels].sort((a, b) => b.width - a.width);
}

/** Any tiled TIFF or BigTIFF: the fallback, last in detection order. */
export const genericTiff: SlideFormat = {
  name: 'generic-tiff',
  vendor: 'generic-tiff',
  async detect(probe) {
    const dir = await tiffDirectoryOf(probe);
    if (!dir) return no('not a TIFF file');
    if (!dir.ifds[0]!.isTiled) return no('TIFF is not tiled');
    return ok();
  },
  async open(probe) {
    const dir = await tiffDirectoryOf(probe);
    if (!dir) throw new UnsupportedSlideError(`${probe.name}: not a TIFF file`);
    const levels = genericLevels(dir.ifds);
    const mpp = await mppFromResolution(levels[0]!);
    const warnings = mpp ? [] : ['no usable physical pixel size (needs ResolutionUnit centimetre and ≤ 100 µm/px): mpp unknown'];
    const properties: Record<string, string> = { 'openslide.vendor': 'generic-tiff' };
    if (dir.ifds[0]!.description) properties['tiff.ImageDescription'] = dir.ifds[0]!.description;
    if (mpp) { properties['openslide.mpp-x'] = String(mpp.x); properties['openslide.mpp-y'] = String(mpp.y); }
    return createTiffSlide({
      format: 'generic-tiff', vendor: 'generic-tiff', source: dir.source, levels, mpp,
      objectivePower: null, properties, associated: [], warnings,
    });
  },
};
