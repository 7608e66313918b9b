/**
 * Synthetic whole-slide images with planted anomalies and their true mask, for tests and
 * benchmarks. See README "lamina synth" for the file layout.
 *
 * @example
 * const r = await synthesizeSlide({ width: 20000, height: 20000, out: 'tmp/s.tiff', anomalies: 8, seed: 7 });
 * // r.path, r.maskPath, r.sidecarPath, r.anomalies[i].{kind, x, y, width, height}
 */
import { UnprocessableError, invalidParameter } from '../errors.ts';
import { type Anomaly, type AnomalyKind, placeAnomalies } from './anomalies.ts';
import { buildStromaAtlas } from './atlas.ts';
import { autoMaskDownsample, rasterizeMask, writeMaskPng, writeSidecar } from './mask.ts';
import { resolveOptions, type SynthOptions } from './options.ts';
import { pyramidLevels, type LevelGeometry } from './pyramid.ts';
import { defaultSharedDir, hasRealSources, labStats, loadRealSources, stainMatched, type RgbPatch } from './real-sources.ts';
import { writePyramid } from './slide-writer.ts';
import { TISSUE_THRESHOLD, tissueField } from './texture.ts';
import { TileRenderer, type RenderSetup } from './tile-render.ts';

export type { Anomaly, AnomalyKind } from './anomalies.ts';
export { ANOMALY_KINDS, anomalyCoverage, isInside } from './anomalies.ts';
export type { SynthOptions } from './options.ts';
export { readTruth, type MaskRaster, type SynthSidecar } from './mask.ts';
export { BigTiffTileWriter, TiffWriteError, type TiledLevelSpec, type TiledTiffOptions } from './tiff-writer.ts';

/** What `synthesizeSlide` wrote. */
export interface SynthResult {
  path: string;
  maskPath: string;
  sidecarPath: string;
  width: number;
  height: number;
  mpp: number;
  seed: number;
  tileSize: number;
  levels: LevelGeometry[];
  background: 'procedural' | 'real';
  maskDownsample: number;
  maskWidth: number;
  maskHeight: number;
  anomalies: Anomaly[];
  bytes: number;
  tiles: number;
  glassTiles: number;
}

/**
 * Writes a synthetic pyramidal JPEG BigTIFF, its anomaly mask (PNG) and sidecar (JSON). Same
 * options → byte-identical files. Streams: memory does not grow with the slide size.
 * @throws InvalidParameterError for bad options; UnprocessableError when anomalies do not fit;
 *   NotFoundError when real-tissue kinds are asked for and ../shared is missing.
 */
export async function synthesizeSlide(options: SynthOptions): Promise<SynthResult> {
  const o = resolveOptions(options);
  const sharedDir = o.sharedDir ?? defaultSharedDir();
  const realAvailable = hasRealSources(sharedDir);
  const kinds: readonly AnomalyKind[] = o.kinds ?? (o.background === 'real'
    ? ['real-tissue', 'real-stain-matched', 'dense-nuclei']
    : realAvailable ? ['dense-nuclei', 'morphology', 'real-tissue', 'real-stain-matched'] : ['dense-nuclei', 'morphology']);
  const needReal = o.background === 'real' || (o.anomalies > 0 && kinds.some((k) => k.startsWith('real')));
  const maxAnomalySize = o.maxAnomalySize ?? Math.max(o.minAnomalySize, Math.min(3072, Math.floor(Math.min(o.width, o.height) / 6)));
  // A blob of diameter ≥ minSize always contains a mask sample point when its radius (≥ 0.8·min/2 after
  // boundary harmonics) exceeds half the sample diagonal: this keeps the smallest anomaly visible in the mask.
  const showsSmallest = (d: number) => (0.8 * o.minAnomalySize) / 2 >= (d * Math.SQRT2) / 2;
  let maskDownsample = o.maskDownsample ?? autoMaskDownsample(o.width, o.height);
  while (o.maskDownsample === undefined && maskDownsample > 1 && !showsSmallest(maskDownsample)) maskDownsample /= 2;
  if (!showsSmallest(maskDownsample)) {
    throw invalidParameter('maskDownsample', `at most ${Math.floor((0.8 * o.minAnomalySize) / Math.SQRT2)} for anomalies of ${o.minAnomalySize} px`, maskDownsample);
  }

  const atlas = buildStromaAtlas(o.seed);
  const sources = needReal ? await loadRealSources(sharedDir, o.background === 'real') : { anomalies: [] as RgbPatch[], background: undefined };
  const base: RenderSetup = { seed: o.seed, width: o.width, height: o.height, tileSize: o.tileSize, background: o.background, anomalies: [], patches: [], backgroundPatch: sources.background };
  const probe = new TileRenderer(base, atlas);

  const patches: RgbPatch[] = [];
  const realPatches = { raw: [] as number[], matched: [] as number[], names: sources.anomalies.map((p) => p.name) };
  if (sources.anomalies.length > 0) {
    const target = labStats(sources.background?.data ?? normalTissueSample(probe));
    for (const p of sources.anomalies) { realPatches.raw.push(patches.length); patches.push(p); }
    for (const p of sources.anomalies) { realPatches.matched.push(patches.length); patches.push(stainMatched(p, target)); }
  }
  const anomalies = o.anomalies === 0 ? [] : placeAnomalies(probe.ctx, o.seed, {
    count: o.anomalies, kinds, minSize: o.minAnomalySize, maxSize: maxAnomalySize, gap: Math.max(64, 3 * maskDownsample), realPatches,
  });

  const levels = pyramidLevels(o.width, o.height, o.tileSize, o.levelFactor);
  const description = `Lamina synthetic slide (not real tissue): seed=${o.seed} background=${o.background} anomalies=${anomalies.length}`
    + ` kinds=${[...new Set(anomalies.map((a) => a.kind))].join(',') || 'none'} |MPP = ${o.mpp}`;
  const setup: RenderSetup = { ...base, anomalies, patches };
  const written = await writePyramid(setup, atlas, {
    path: o.out, levels, factor: o.levelFactor, quality: o.quality, mpp: o.mpp, description, workers: o.workers,
    onProgress: o.onProgress, signal: o.signal,
  });
  // Truth files last: a failed or cancelled run leaves none of the three behind.
  const mask = rasterizeMask(anomalies, o.width, o.height, maskDownsample);
  await writeMaskPng(o.maskPath, mask);
  const realSources = [...new Set([...(sources.background ? [sources.background.name] : []), ...anomalies.flatMap((a) => (a.source ? [a.source] : []))])];
  writeSidecar(o.sidecarPath, {
    format: 'lamina-synth-anomalies/1', slide: o.out, mask: o.maskPath, width: o.width, height: o.height, mpp: o.mpp, seed: o.seed,
    background: o.background, maskDownsample, maskWidth: mask.width, maskHeight: mask.height, realSources, anomalies,
  });

  return {
    path: o.out, maskPath: o.maskPath, sidecarPath: o.sidecarPath, width: o.width, height: o.height, mpp: o.mpp, seed: o.seed,
    tileSize: o.tileSize, levels, background: o.background, maskDownsample, maskWidth: mask.width, maskHeight: mask.height,
    anomalies, ...written,
  };
}

/** A rendered tile of normal procedural tissue (for the stain statistics real patches are matched to). */
function normalTissueSample(probe: TileRenderer): Uint8Array {
  const { width, height, tileSize } = probe.setup;
  let best = { x: 0, y: 0, v: -Infinity };
  for (let j = 1; j < 16; j++) {
    for (let i = 1; i < 16; i++) {
      const x = Math.floor((i * width) / 16), y = Math.floor((j * height) / 16);
      const v = tissueField(probe.ctx, x, y);
      if (v > best.v) best = { x, y, v };
    }
  }
  if (best.v < TISSUE_THRESHOLD) throw new UnprocessableError('No tissue found to stain-match real patches to');
  const out = new Uint8Array(tileSize * tileSize * 3);
  probe.render(Math.max(0, best.x - tileSize / 2), Math.max(0, best.y - tileSize / 2), out);
  return out;
}
