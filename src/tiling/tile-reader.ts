/**
 * Reads planned tiles' pixels, grouped by read block: one `readRegion` per block covering the
 * block's requested tiles, then patches are cut from it (each stored tile decoded once per block
 * instead of once per overlapping patch). Patches read at another size than the analysis tile size
 * are resized with sharp (area-averaging when shrinking).
 */
import sharp from 'sharp';
import type { RgbImage, Slide } from '../readers/types.ts';
import { CancelledError } from '../errors.ts';
import type { PlannedTile, TilePlan } from './tile-plan.ts';

/**
 * Returns the tiles' RGB pixels at `plan.tileSizePx`, in the order given.
 * @example const images = await readTiles(slide, plan, plan.tiles.slice(0, 32));
 */
export async function readTiles(slide: Slide, plan: TilePlan, tiles: readonly PlannedTile[], signal?: AbortSignal): Promise<RgbImage[]> {
  const out: RgbImage[] = new Array(tiles.length);
  const groups = new Map<number, number[]>();
  tiles.forEach((tile, i) => {
    const group = groups.get(tile.block);
    if (group) group.push(i);
    else groups.set(tile.block, [i]);
  });
  const read = plan.readSizePx;
  const step = plan.readStridePx;
  for (const members of groups.values()) {
    if (signal?.aborted) throw new CancelledError('tile reading cancelled');
    let minCol = Infinity, minRow = Infinity, maxCol = -Infinity, maxRow = -Infinity;
    for (const i of members) {
      const t = tiles[i]!;
      minCol = Math.min(minCol, t.col); maxCol = Math.max(maxCol, t.col);
      minRow = Math.min(minRow, t.row); maxRow = Math.max(maxRow, t.row);
    }
    // Level-pixel rectangle of the group; level-0 origin from the level's own downsample.
    const levelX = minCol * step;
    const levelY = minRow * step;
    const regionW = (maxCol - minCol) * step + read;
    const regionH = (maxRow - minRow) * step + read;
    const region = await slide.readRegion(
      Math.round(levelX * plan.levelDownsample),
      Math.round(levelY * plan.levelDownsample),
      plan.levelIndex,
      regionW,
      regionH,
      // a pass over the plan meets each stored tile about once: keeping them would only hold memory
      { signal, cache: false },
    );
    for (const i of members) {
      const t = tiles[i]!;
      const patch = cutPatch(region, (t.col - minCol) * step, (t.row - minRow) * step, read);
      out[i] = read === plan.tileSizePx ? patch : await resizePatch(patch, plan.tileSizePx);
    }
  }
  return out;
}

function cutPatch(region: RgbImage, x: number, y: number, size: number): RgbImage {
  const data = Buffer.alloc(size * size * 3, 255);
  const rowBytes = Math.max(0, Math.min(size, region.width - x)) * 3;
  for (let r = 0; r < size && y + r < region.height; r++) {
    const from = ((y + r) * region.width + x) * 3;
    region.data.copy(data, r * size * 3, from, from + rowBytes);
  }
  return { width: size, height: size, data };
}

async function resizePatch(patch: RgbImage, size: number): Promise<RgbImage> {
  const data = await sharp(patch.data, { raw: { width: patch.width, height: patch.height, channels: 3 } })
    .resize(size, size, { kernel: 'cubic', fit: 'fill' })
    .raw()
    .toBuffer();
  return { width: size, height: size, data };
}
