/**
 * Options of `synthesizeSlide` / `lamina synth`, with every default in one place and one
 * validation that the CLI and programmatic callers share.
 */
import { availableParallelism } from 'node:os';
import { invalidParameter, checkInt } from '../errors.ts';
import { ANOMALY_KINDS, type AnomalyKind } from './anomalies.ts';

export interface SynthOptions {
  /** Level-0 size in pixels (64 … 1,000,000 each). */
  width: number;
  height: number;
  /** Output BigTIFF path. */
  out: string;
  /** Number of planted anomalies. @defaultValue 8 */
  anomalies?: number;
  /** Mask PNG path. @defaultValue `<out without extension>.mask.png` */
  maskPath?: string;
  /** Sidecar JSON path. @defaultValue `<out without extension>.anomalies.json` */
  sidecarPath?: string;
  /** @defaultValue 1 */
  seed?: number;
  /** 256 or 512. @defaultValue 512 */
  tileSize?: number;
  /** Downsample between pyramid levels, 2 or 4. @defaultValue 4 */
  levelFactor?: number;
  /** JPEG quality 1–100. @defaultValue 85 */
  quality?: number;
  /** µm per level-0 pixel. @defaultValue 0.5 (20×) */
  mpp?: number;
  /** @defaultValue 'procedural' */
  background?: 'procedural' | 'real';
  /**
   * Anomaly kinds, cycled over the anomalies (largest first).
   * @defaultValue all four for a procedural background (the real ones only when ../shared is present);
   * real-tissue, real-stain-matched, dense-nuclei for a real background
   */
  kinds?: readonly AnomalyKind[];
  /** Smallest anomaly diameter in level-0 px. @defaultValue 64 */
  minAnomalySize?: number;
  /** Largest anomaly diameter. @defaultValue min(3072, shorter side / 6) */
  maxAnomalySize?: number;
  /** Level-0 px per mask pixel. @defaultValue autoMaskDownsample (8 … 32) */
  maskDownsample?: number;
  /** Render threads; 0 renders on the calling thread. @defaultValue min(2, cores) for slides of ≥ 64 tiles, else 0 */
  workers?: number;
  /** Folder holding slides/ and histology/. @defaultValue ../shared next to the repository, or LAMINA_SHARED_DIR */
  sharedDir?: string;
  onProgress?: (level0TilesDone: number, level0TilesTotal: number) => void;
  signal?: AbortSignal;
}

export type ResolvedSynthOptions = Required<Omit<SynthOptions, 'onProgress' | 'signal' | 'kinds' | 'maxAnomalySize' | 'maskDownsample' | 'sharedDir'>> &
  Pick<SynthOptions, 'onProgress' | 'signal' | 'kinds' | 'maxAnomalySize' | 'maskDownsample' | 'sharedDir'>;

/** Validates and fills defaults (kinds, max size and mask downsample are settled later, once sources are known). */
export function resolveOptions(o: SynthOptions): ResolvedSynthOptions {
  checkInt('width', o.width, 64, 1_000_000);
  checkInt('height', o.height, 64, 1_000_000);
  if (typeof o.out !== 'string' || o.out === '') throw invalidParameter('out', 'output file path', o.out);
  const anomalies = checkInt('anomalies', o.anomalies ?? 8, 0, 1000);
  const seed = checkInt('seed', o.seed ?? 1, 0, 2 ** 31 - 1);
  const tileSize = o.tileSize ?? 512;
  if (tileSize !== 256 && tileSize !== 512) throw invalidParameter('tileSize', '256 or 512', tileSize);
  const levelFactor = o.levelFactor ?? 4;
  if (levelFactor !== 2 && levelFactor !== 4) throw invalidParameter('levelFactor', '2 or 4', levelFactor);
  const quality = checkInt('quality', o.quality ?? 85, 1, 100);
  const mpp = o.mpp ?? 0.5;
  if (typeof mpp !== 'number' || !(mpp >= 0.05 && mpp <= 100)) throw invalidParameter('mpp', 'number between 0.05 and 100', mpp);
  const background = o.background ?? 'procedural';
  if (background !== 'procedural' && background !== 'real') throw invalidParameter('background', '"procedural" or "real"', background);
  if (o.kinds !== undefined) {
    if (!Array.isArray(o.kinds) || o.kinds.length === 0) throw invalidParameter('kinds', `non-empty list of ${ANOMALY_KINDS.join(', ')}`, o.kinds);
    for (const k of o.kinds) if (!ANOMALY_KINDS.includes(k)) throw invalidParameter('kinds', `one of ${ANOMALY_KINDS.join(', ')}`, k);
    if (background === 'real' && o.kinds.includes('morphology')) {
      throw invalidParameter('kinds', 'kinds without "morphology" on a real background (it reshapes procedural nuclei)', 'morphology');
    }
  }
  const minAnomalySize = checkInt('minAnomalySize', o.minAnomalySize ?? 64, 16, 100_000);
  if (o.maxAnomalySize !== undefined) checkInt('maxAnomalySize', o.maxAnomalySize, minAnomalySize, 100_000);
  if (o.maskDownsample !== undefined && ![1, 2, 4, 8, 16, 32, 64, 128].includes(o.maskDownsample)) {
    throw invalidParameter('maskDownsample', 'power of two from 1 to 128', o.maskDownsample);
  }
  const tiles = Math.ceil(o.width / tileSize) * Math.ceil(o.height / tileSize);
  const workers = checkInt('workers', o.workers ?? (tiles >= 64 ? Math.min(2, availableParallelism()) : 0), 0, 64);
  const stem = o.out.replace(/\.(tiff?|btf|tf8)$/i, '');
  return {
    ...o, anomalies, seed, tileSize, levelFactor, quality, mpp, background, minAnomalySize, workers,
    maskPath: o.maskPath ?? `${stem}.mask.png`,
    sidecarPath: o.sidecarPath ?? `${stem}.anomalies.json`,
  };
}
