/**
 * Real H&E patches for real-tissue anomalies and for `background: 'real'`, decoded with sharp from
 * the shared sample data (../shared/slides, ../shared/histology next to the repository). Nothing
 * is copied into the repository; the sidecar names each file used.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { NotFoundError } from '../errors.ts';
import { labStats, matchStain, type LabStats } from './stain.ts';

/** A decoded RGB image (row-major, 3 bytes per pixel). */
export interface RgbPatch {
  name: string;
  width: number;
  height: number;
  data: Uint8Array;
}

/** A region of a source file: `region` in the file's own pixels, page for multi-page TIFF/SVS. */
interface SourceSpec { name: string; path: string; page?: number; region?: { left: number; top: number; width: number; height: number } }

/** The repository's sibling `shared/` folder, or LAMINA_SHARED_DIR. */
export function defaultSharedDir(): string {
  if (process.env.LAMINA_SHARED_DIR) return resolve(process.env.LAMINA_SHARED_DIR);
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../../shared');
}

/** Tissue for anomalies: tumour-rich and nuclei-rich tiles, unlike the background source. */
const ANOMALY_SOURCES: Array<Omit<SourceSpec, 'path'> & { rel: string }> = [
  { name: 'slides/tcga-lung-rgb.png', rel: 'slides/tcga-lung-rgb.png' },
  { name: 'histology/histolab-tiles/high-nuclei-score-level0.png', rel: 'histology/histolab-tiles/high-nuclei-score-level0.png' },
  { name: 'histology/histolab-tiles/medium-nuclei-score-level0.png', rel: 'histology/histolab-tiles/medium-nuclei-score-level0.png' },
];

/** Background source: dermis and epidermis of CMU-1 (Aperio, 0.499 µm/px), a tissue-filled crop. */
const BACKGROUND_SOURCE = {
  name: 'slides/CMU-1-Small-Region.svs#page=0,region=900,1500,1024,1024', rel: 'slides/CMU-1-Small-Region.svs', page: 0,
  region: { left: 900, top: 1500, width: 1024, height: 1024 },
};

/** True when the shared sample data needed for real-tissue kinds is present. */
export function hasRealSources(sharedDir = defaultSharedDir()): boolean {
  return [...ANOMALY_SOURCES.map((s) => s.rel), BACKGROUND_SOURCE.rel].every((rel) => existsSync(join(sharedDir, rel)));
}

async function decode(spec: SourceSpec): Promise<RgbPatch> {
  if (!existsSync(spec.path)) throw new NotFoundError(`Real tissue source not found: ${spec.path} (set LAMINA_SHARED_DIR or use procedural kinds only)`);
  let img = sharp(spec.path, spec.page !== undefined ? { page: spec.page } : {});
  if (spec.region) img = img.extract(spec.region);
  const { data, info } = await img.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { name: spec.name, width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

const loaded = new Map<string, Promise<{ anomalies: RgbPatch[]; background?: RgbPatch }>>();

/** Decodes the anomaly sources and, if asked, the background source (decoded once per process). */
export function loadRealSources(sharedDir: string, withBackground: boolean): Promise<{ anomalies: RgbPatch[]; background?: RgbPatch }> {
  const key = `${sharedDir}\0${withBackground}`;
  let p = loaded.get(key);
  if (!p) {
    p = decodeAll(sharedDir, withBackground);
    p.catch(() => loaded.delete(key));
    loaded.set(key, p);
  }
  return p;
}

async function decodeAll(sharedDir: string, withBackground: boolean): Promise<{ anomalies: RgbPatch[]; background?: RgbPatch }> {
  const anomalies = await Promise.all(ANOMALY_SOURCES.map((s) => decode({ ...s, path: join(sharedDir, s.rel) })));
  const background = withBackground ? await decode({ ...BACKGROUND_SOURCE, path: join(sharedDir, BACKGROUND_SOURCE.rel) }) : undefined;
  return { anomalies, background };
}

/** The patch colour-transferred to `target` (Lab mean/std of the tissue around it); only morphology then differs. */
export function stainMatched(patch: RgbPatch, target: LabStats): RgbPatch {
  return { ...patch, name: `${patch.name} (stain-matched)`, data: matchStain(patch.data, target) };
}

export { labStats };
