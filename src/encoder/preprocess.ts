/**
 * Tiles → model input: resize with sharp to the model's pixel size (mpp), centre-crop or pad with
 * white to `inputSize`, and normalise with the manifest's mean/std into NCHW float32.
 */
import sharp from 'sharp';
import { invalidParameter } from '../errors.ts';
import type { RgbImage } from '../readers/types.ts';
import type { ModelManifest } from './manifest.ts';
import { normalizeInto } from './normalize.ts';

/** Options of {@link preprocessTiles}. */
export interface PreprocessOptions {
  /**
   * Micrometres per pixel of the tiles. When given, tiles are scaled by `srcMpp / manifest.mpp`
   * (so a 448-px tile at 0.25 µm/px becomes 224 px at 0.5) and then centre-cropped or padded with
   * white to `inputSize`; when left out, every tile is resized to `inputSize × inputSize`.
   */
  srcMpp?: number;
}

/** Side, in source pixels, of the tile that covers exactly the model's field of view at `srcMpp`. */
export function sourceTileSize(manifest: ModelManifest, srcMpp: number): number {
  if (!(srcMpp > 0)) throw invalidParameter('srcMpp', 'positive number', srcMpp);
  return Math.round((manifest.inputSize * manifest.mpp) / srcMpp);
}

/**
 * Preprocesses tiles for `Encoder.embed`: returns `tiles.length × 3 × inputSize × inputSize` float32.
 * @example const pixels = await preprocessTiles(tiles, encoder.manifest, { srcMpp: 0.25 });
 */
export async function preprocessTiles(tiles: readonly RgbImage[], manifest: ModelManifest, options: PreprocessOptions = {}): Promise<Float32Array> {
  const size = manifest.inputSize;
  const out = new Float32Array(tiles.length * 3 * size * size);
  await Promise.all(tiles.map(async (tile, i) => {
    if (tile.data.length !== tile.width * tile.height * 3) {
      throw invalidParameter(`tiles[${i}].data.length`, `${tile.width} × ${tile.height} × 3`, tile.data.length);
    }
    const fitted = await fitTile(tile, size, options.srcMpp === undefined ? undefined : options.srcMpp / manifest.mpp);
    normalizeInto(fitted, size, manifest.mean, manifest.std, out, i * 3 * size * size);
  }));
  return out;
}

/** Resizes (and crops/pads) one tile to `size × size` interleaved RGB. */
async function fitTile(tile: RgbImage, size: number, scale: number | undefined): Promise<Buffer> {
  const raw = { width: tile.width, height: tile.height, channels: 3 as const };
  if (scale === undefined) {
    if (tile.width === size && tile.height === size) return tile.data;
    return sharp(tile.data, { raw }).resize(size, size, { fit: 'fill' }).raw().toBuffer();
  }
  const w = Math.max(1, Math.round(tile.width * scale));
  const h = Math.max(1, Math.round(tile.height * scale));
  let img = sharp(tile.data, { raw });
  if (w !== tile.width || h !== tile.height) img = sharp(await img.resize(w, h, { fit: 'fill' }).raw().toBuffer(), { raw: { width: w, height: h, channels: 3 } });
  if (w === size && h === size) return img.raw().toBuffer();
  // Crop the centre where larger, pad with white (background) where smaller.
  const cropW = Math.min(w, size), cropH = Math.min(h, size);
  const left = Math.floor((w - cropW) / 2), top = Math.floor((h - cropH) / 2);
  const padL = Math.floor((size - cropW) / 2), padT = Math.floor((size - cropH) / 2);
  return img.extract({ left, top, width: cropW, height: cropH })
    .extend({ left: padL, right: size - cropW - padL, top: padT, bottom: size - cropH - padT, background: { r: 255, g: 255, b: 255 } })
    .raw().toBuffer();
}

export { normalizeInto, normalizeTable } from './normalize.ts';
