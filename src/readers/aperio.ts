import { UnsupportedSlideError } from '../errors.ts';
import { no, ok, type Slide, type SlideFormat, type SlideProbe } from './types.ts';
import { tiffDirectoryOf, type TiffDirectory, type TiffIfd } from './tiff/tiff-directory.ts';
import { createTiffSlide } from './tiff/tiff-slide.ts';

/** Key/value pairs of an Aperio ImageDescription and the quirks met while reading them. */
export interface AperioDescription {
  /** Everything before the first '|': the library/version header and level summary. */
  header: string;
  /** Keys as written; a key repeated verbatim keeps its last value (as OpenSlide does). */
  values: Record<string, string>;
  warnings: string[];
}

/**
 * Parses `Aperio Image Library v… \n … |AppMag = 20|MPP = 0.4990|…`. Real files repeat keys
 * (CMU-1-Small-Region.svs has `OriginalWidth` twice) and vary their case (`Originalheight` beside
 * `OriginalHeight`); both are reported as warnings and lookups go through `aperioValue`.
 */
export function parseAperioDescription(description: string): AperioDescription {
  const [header = '', ...pairs] = description.split('|');
  const values: Record<string, string> = {};
  const warnings: string[] = [];
  const seenLower = new Map<string, string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (!key) continue;
    if (key in values && values[key] !== value) warnings.push(`Aperio key '${key}' appears twice ('${values[key]}', '${value}'); using the last`);
    const prior = seenLower.get(key.toLowerCase());
    if (prior !== undefined && prior !== key) warnings.push(`Aperio keys '${prior}' and '${key}' differ only in case`);
    seenLower.set(key.toLowerCase(), key);
    values[key] = value;
  }
  return { header: header.trim(), values, warnings };
}

/** Case-insensitive lookup; the exact spelling wins when several case variants exist. */
export function aperioValue(desc: AperioDescription, key: string): string | undefined {
  if (key in desc.values) return desc.values[key];
  const lower = key.toLowerCase();
  let found: string | undefined;
  for (const [k, v] of Object.entries(desc.values)) if (k.toLowerCase() === lower) found = v;
  return found;
}

function positiveNumber(raw: string | undefined): number | null {
  if (raw === undefined) return null;
  const v = Number(raw);
  return Number.isFinite(v) && v > 0 ? v : null;
}

/** Second line's first word of a stripped IFD's description names it ('label', 'macro'). */
function associatedName(ifd: TiffIfd): string | null {
  const line = ifd.description.split(/\r?\n/)[1]?.trim() ?? '';
  const word = line.split(/\s+/)[0]?.toLowerCase() ?? '';
  return /^[a-z][a-z0-9_-]*$/.test(word) ? word : null;
}

async function openAperio(probe: SlideProbe, dir: TiffDirectory): Promise<Slide> {
  const first = dir.ifds[0]!;
  const desc = parseAperioDescription(first.description);
  const warnings = [...desc.warnings];
  // After OpenSlide's aperio driver: every tiled IFD is a level; the stripped IFD right after level 0
  // is the thumbnail; other stripped IFDs name themselves on their description's second line.
  const levels = dir.ifds.filter((ifd) => ifd.isTiled).sort((a, b) => b.width - a.width);
  const associated: Array<{ name: string; ifd: TiffIfd }> = [];
  for (const ifd of dir.ifds) {
    if (ifd.isTiled) continue;
    const name = ifd.index === 1 ? 'thumbnail' : associatedName(ifd);
    if (name && !associated.some((a) => a.name === name)) associated.push({ name, ifd });
  }
  const mppValue = positiveNumber(aperioValue(desc, 'MPP'));
  const objectivePower = positiveNumber(aperioValue(desc, 'AppMag'));
  if (mppValue === null) warnings.push('no MPP in the Aperio ImageDescription: physical pixel size unknown');
  if (objectivePower === null) warnings.push('no AppMag in the Aperio ImageDescription: objective power unknown');
  const properties: Record<string, string> = {
    'openslide.vendor': 'aperio',
    'openslide.comment': first.description,
    'tiff.ImageDescription': first.description,
  };
  for (const [k, v] of Object.entries(desc.values)) properties[`aperio.${k}`] = v;
  if (mppValue !== null) properties['openslide.mpp-x'] = properties['openslide.mpp-y'] = String(mppValue);
  if (objectivePower !== null) properties['openslide.objective-power'] = String(objectivePower);
  return createTiffSlide({
    format: 'aperio', vendor: 'aperio', source: dir.source, levels,
    mpp: mppValue === null ? null : { x: mppValue, y: mppValue },
    objectivePower, properties, associated, warnings,
  });
}

/** Aperio SVS: a TIFF whose first ImageDescription starts with "Aperio". */
export const aperio: SlideFormat = {
  name: 'aperio',
  vendor: 'aperio',
  async detect(probe) {
    const dir = await tiffDirectoryOf(probe);
    if (!dir) return no('not a TIFF file');
    if (!dir.ifds[0]!.description.startsWith('Aperio')) return no('not an Aperio ImageDescription');
    if (!dir.ifds[0]!.isTiled) return no('TIFF is not tiled');
    return ok();
  },
  async open(probe) {
    const dir = await tiffDirectoryOf(probe);
    if (!dir) throw new UnsupportedSlideError(`${probe.name}: not a TIFF file`);
    return openAperio(probe, dir);
  },
};
