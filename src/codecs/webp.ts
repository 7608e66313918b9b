import type { Codec } from './types.ts';
import { decodeWithSharp } from './sharp-decode.ts';

/** TIFF compression 50001 (GDAL/libtiff WebP): each tile is a complete WebP file; libvips decodes it. */
export const webp: Codec = {
  name: 'webp',
  decode: (data, ctx) => decodeWithSharp(data, 'WebP', ctx.name),
};
