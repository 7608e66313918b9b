/**
 * Streams a synthetic slide to a pyramidal tiled JPEG BigTIFF: level-0 tiles come from a
 * TileProducer in depth-first order; each level-L tile is assembled from the reduced copies of its
 * factor × factor children as soon as the last child is done, encoded and appended. Memory: one
 * tile buffer per level plus the producer's window; the file grows by appends only.
 */
import { rmSync } from 'node:fs';
import { CancelledError } from '../errors.ts';
import type { StromaAtlas } from './atlas.ts';
import { blitChild, boxDownsample, level0Order, type LevelGeometry } from './pyramid.ts';
import { GLASS_RGB } from './stain.ts';
import { BigTiffTileWriter } from './tiff-writer.ts';
import { encodeJpeg, inlineProducer, workerProducer, type TileProducer } from './tile-producer.ts';
import type { RenderSetup } from './tile-render.ts';

export interface PyramidWriteOptions {
  path: string;
  levels: LevelGeometry[];
  factor: number;
  quality: number;
  mpp: number;
  description: string;
  /** 0 renders on this thread. */
  workers: number;
  onProgress?: (level0Done: number, level0Total: number) => void;
  signal?: AbortSignal;
}

export interface PyramidWriteResult { bytes: number; tiles: number; glassTiles: number }

export async function writePyramid(setup: RenderSetup, atlas: StromaAtlas, o: PyramidWriteOptions): Promise<PyramidWriteResult> {
  const T = setup.tileSize, f = o.factor;
  const writer = BigTiffTileWriter.create(o.path, {
    levels: o.levels.map((l) => ({ width: l.width, height: l.height, tileWidth: T, tileHeight: T, mppX: o.mpp * l.downsample, mppY: o.mpp * l.downsample })),
    compression: 7, photometric: 6, samplesPerPixel: 3, ycbcrSubsampling: [2, 2],
    description: o.description, software: 'Lamina synth',
  });
  const order = level0Order(o.levels, f);
  const total = order.length / 2;
  const enc = { quality: o.quality, factor: f };
  const producer: TileProducer = o.workers > 0
    ? workerProducer({ setup, atlas, enc }, order, o.workers)
    : inlineProducer(setup, atlas, enc, order);
  const glassRaw = new Uint8Array(T * T * 3).fill(GLASS_RGB);
  const glassJpeg = await encodeJpeg(glassRaw, T, o.quality);
  let done = 0, tiles = 0, glassTiles = 0;
  const top = o.levels.length - 1;

  const write = (level: number, c: number, r: number, jpeg: Uint8Array | null) => {
    writer.writeTile(level, c, r, jpeg ?? glassJpeg);
    tiles++;
    if (!jpeg) glassTiles++;
  };

  /** Writes tile (c, r) of `level` and everything under it; returns its reduced copy (null: glass). */
  const build = async (level: number, c: number, r: number): Promise<Uint8Array | null> => {
    if (level === 0) {
      if (o.signal?.aborted) throw new CancelledError('synth cancelled');
      const t = await producer.next();
      write(0, c, r, t.jpeg);
      o.onProgress?.(++done, total);
      return t.reduced;
    }
    let acc: Uint8Array | null = null;
    const below = o.levels[level - 1];
    for (let j = 0; j < f; j++) {
      for (let i = 0; i < f; i++) {
        const cc = c * f + i, rr = r * f + j;
        if (cc >= below.cols || rr >= below.rows) continue;
        const reduced = await build(level - 1, cc, rr);
        if (!reduced) continue;
        acc ??= new Uint8Array(glassRaw);
        blitChild(acc, T, reduced, f, i, j);
      }
    }
    if (!acc) { write(level, c, r, null); return null; }
    write(level, c, r, await encodeJpeg(acc, T, o.quality));
    return level < top ? boxDownsample(acc, T, f) : null;
  };

  try {
    for (let r = 0; r < o.levels[top].rows; r++) for (let c = 0; c < o.levels[top].cols; c++) await build(top, c, r);
    const bytes = writer.close();
    return { bytes, tiles, glassTiles };
  } catch (err) {
    writer.abort();
    rmSync(o.path, { force: true });
    throw err;
  } finally {
    await producer.close();
  }
}
