/**
 * Reads planned tiles' pixels so that each stored (file) tile they touch is decoded once per call.
 * Analysis tiles (224 px) rarely align with stored tiles (256 or 512 px), so a read per tile, or per
 * group of tiles, decodes the stored tiles on its edges again for the next one. Instead the tiles'
 * area is cut into read units: bands one stored-tile row high (a slab), split into runs of at most
 * `UNIT_STORED_COLS` stored tiles where the tiles leave no gap, each read with one `readRegion` and
 * copied into every tile it overlaps (a tile across a band or run edge is filled from two or four
 * units). Units run `concurrency` at a time; only the units in flight are held beside the output.
 * Patches read at another size than the analysis tile size are resized with sharp (area-averaging
 * when shrinking).
 */
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import type { LevelInfo, RgbImage, Slide } from '../readers/types.ts';
import { CancelledError } from '../errors.ts';
import type { PlannedTile, TilePlan } from './tile-plan.ts';

/**
 * Stored tiles across one read unit at most: a few per libvips call keep most of the mosaic's saving
 * (tiff-image.ts: one call for 4 tiles costs two thirds of 4 calls) while a batch still gives a
 * many-core host a dozen or more units to decode at once.
 */
const UNIT_STORED_COLS = 4;

/** Read units in flight by default: the best of 4 / 8 / 16 on the 16-core H200 host. */
const MAX_READ_UNITS = 8;

/** Slab height aims for at least this many rows (levels stored in thin strips are read a few strips at a time). */
const MIN_SLAB_PX = 256;

/**
 * Read units decoded at once: `LAMINA_READ_PARTS`, else one per core up to 8 and up to the size of
 * libuv's thread pool, where sharp decodes (sharp.concurrency() is 1 on glibc builds: one thread per
 * decode). bin/lamina.js sizes that pool to the cores; at libuv's default of 4 threads a 16-core host
 * decoded 4 units at a time. 8, not 16, on the 16-core H200 host: 115 ms a batch of 256 against 131
 * (and 128 at 4), CPU time per tile rising 2.9 -> 4.7 ms from 8 to 16 (bench/read-h200.sh).
 */
export function readConcurrency(): number {
  const env = Number(process.env.LAMINA_READ_PARTS);
  if (process.env.LAMINA_READ_PARTS && Number.isInteger(env) && env >= 1) return Math.min(env, 64);
  return Math.max(1, Math.min(availableParallelism(), MAX_READ_UNITS, libuvPoolSize()));
}

/** Threads in libuv's pool: UV_THREADPOOL_SIZE as libuv reads it at first use (default 4, at most 1024). */
export function libuvPoolSize(): number {
  const n = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10);
  return n >= 1 ? Math.min(n, 1024) : 4;
}

/** One `readRegion`: a level-pixel rectangle and the tiles (indices into the call's list) it fills. */
export interface ReadUnit {
  x: number;
  y: number;
  width: number;
  height: number;
  tiles: number[];
}

/**
 * Returns the tiles' RGB pixels at `plan.tileSizePx`, in the order given, `concurrency` read units
 * decoding at once.
 * @example const images = await readTiles(slide, plan, plan.tiles.slice(0, 32));
 */
export async function readTiles(slide: Slide, plan: TilePlan, tiles: readonly PlannedTile[], signal?: AbortSignal, concurrency = readConcurrency()): Promise<RgbImage[]> {
  const read = plan.readSizePx;
  const step = plan.readStridePx;
  const units = readUnits(slide.levels[plan.levelIndex]!, tiles, step, read);
  // Every byte is written: a tile's rows are split among slabs, its columns among the runs of each slab.
  const patches = tiles.map(() => Buffer.allocUnsafe(read * read * 3));
  await eachLimited(units.length, concurrency, async (u) => {
    if (signal?.aborted) throw new CancelledError('tile reading cancelled');
    const unit = units[u]!;
    const region = await slide.readRegion(
      Math.round(unit.x * plan.levelDownsample),
      Math.round(unit.y * plan.levelDownsample),
      plan.levelIndex,
      unit.width,
      unit.height,
      // a pass over the plan meets each stored tile about once: keeping them would only hold memory
      { signal, cache: false },
    );
    for (const i of unit.tiles) copyOverlap(region, unit, tiles[i]!.col * step, tiles[i]!.row * step, read, patches[i]!);
  });
  const out = patches.map((data): RgbImage => ({ width: read, height: read, data }));
  if (read === plan.tileSizePx) return out;
  const resized: RgbImage[] = new Array(out.length);
  await eachLimited(out.length, concurrency, async (i) => { resized[i] = await resizePatch(out[i]!, plan.tileSizePx); });
  return resized;
}

/**
 * The read units of `tiles` at a level (tile `i` covers level pixels `[col·step, +read)` ×
 * `[row·step, +read)`), slab by slab, left to right. A unit covers only pixels some tile needs and
 * no two units share a stored tile, unless a tile spans more than a slab or a run's width (then the
 * stored tiles under it are met by each unit, as they must be).
 */
export function readUnits(level: LevelInfo, tiles: readonly PlannedTile[], step: number, read: number): ReadUnit[] {
  const storedW = level.tileWidth > 0 ? level.tileWidth : read;
  const storedH = level.tileHeight > 0 ? level.tileHeight : read;
  const slabH = storedH * Math.max(1, Math.round(MIN_SLAB_PX / storedH));
  const bySlab = new Map<number, number[]>();
  tiles.forEach((t, i) => {
    const y = t.row * step;
    for (let s = Math.floor(y / slabH); s * slabH < y + read; s++) {
      const list = bySlab.get(s);
      if (list) list.push(i);
      else bySlab.set(s, [i]);
    }
  });
  const units: ReadUnit[] = [];
  for (const s of [...bySlab.keys()].sort((a, b) => a - b)) {
    const members = bySlab.get(s)!.sort((a, b) => tiles[a]!.col - tiles[b]!.col);
    // Runs of tiles whose stored columns overlap or touch; each run is then cut at stored-tile edges.
    let run: number[] = [];
    let runEnd = -Infinity; // last stored column of the run
    const flush = () => {
      if (run.length) cutRun(run, tiles, step, read, storedW, s * slabH, (s + 1) * slabH, units);
      run = [];
      runEnd = -Infinity;
    };
    for (const i of members) {
      const x = tiles[i]!.col * step;
      if (Math.floor(x / storedW) > runEnd + 1) flush(); // a whole stored column between: nothing to decode there
      run.push(i);
      runEnd = Math.max(runEnd, Math.floor((x + read - 1) / storedW));
    }
    flush();
  }
  return units;
}

/** Cuts one run of a slab into units of at most UNIT_STORED_COLS stored columns, each clipped to its tiles' extent. */
function cutRun(run: number[], tiles: readonly PlannedTile[], step: number, read: number, storedW: number, slabTop: number, slabBottom: number, units: ReadUnit[]): void {
  const x0 = tiles[run[0]!]!.col * step;
  const x1 = Math.max(...run.map((i) => tiles[i]!.col * step + read));
  for (let c = Math.floor(x0 / storedW); c * storedW < x1; c += UNIT_STORED_COLS) {
    const ux0 = Math.max(x0, c * storedW);
    const ux1 = Math.min(x1, (c + UNIT_STORED_COLS) * storedW);
    const members = run.filter((i) => tiles[i]!.col * step < ux1 && tiles[i]!.col * step + read > ux0);
    if (!members.length) continue;
    const uy0 = Math.max(slabTop, Math.min(...members.map((i) => tiles[i]!.row * step)));
    const uy1 = Math.min(slabBottom, Math.max(...members.map((i) => tiles[i]!.row * step + read)));
    units.push({ x: ux0, y: uy0, width: ux1 - ux0, height: uy1 - uy0, tiles: members });
  }
}

/** Copies the part of `region` (the unit's pixels) inside the tile at level (tx, ty) into the tile's buffer. */
function copyOverlap(region: RgbImage, unit: ReadUnit, tx: number, ty: number, size: number, patch: Buffer): void {
  const x0 = Math.max(unit.x, tx), x1 = Math.min(unit.x + unit.width, tx + size);
  const y0 = Math.max(unit.y, ty), y1 = Math.min(unit.y + unit.height, ty + size);
  const bytes = (x1 - x0) * 3;
  if (bytes <= 0) return;
  for (let y = y0; y < y1; y++) {
    const from = ((y - unit.y) * region.width + (x0 - unit.x)) * 3;
    region.data.copy(patch, ((y - ty) * size + (x0 - tx)) * 3, from, from + bytes);
  }
}

/** Runs `task(i)` for every i below `count`, `limit` at a time; once one fails no new one starts (the call's result is lost). */
async function eachLimited(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < count && !failed) {
      try {
        await task(next++);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, worker));
}

async function resizePatch(patch: RgbImage, size: number): Promise<RgbImage> {
  const data = await sharp(patch.data, { raw: { width: patch.width, height: patch.height, channels: 3 } })
    .resize(size, size, { kernel: 'cubic', fit: 'fill' })
    .raw()
    .toBuffer();
  return { width: size, height: size, data };
}
