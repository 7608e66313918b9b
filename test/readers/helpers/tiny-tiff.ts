/**
 * A minimal classic little-endian TIFF writer for tests: hand-built IFDs (including SubIFDs and
 * deliberately broken values) that sharp/libvips would refuse to write.
 */
export type TagValue = number[] | string | Buffer;
export interface TinyIfd {
  /** [tag, field type, values]; TileOffsets/TileByteCounts and SubIFDs are added from `blocks`/`subIfds`. */
  tags: Array<[number, number, TagValue]>;
  /** Compressed tiles (or strips, with `strips: true`) in index order. */
  blocks: Buffer[];
  strips?: boolean;
  subIfds?: TinyIfd[];
}

const TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 13: 4 };

/** Builds the file; IFDs chain in the order given. */
export function buildTiff(ifds: TinyIfd[]): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  const append = (b: Buffer): number => {
    if (pos % 2) { parts.push(Buffer.alloc(1)); pos++; } // word alignment, as TIFF 6.0 asks
    const at = pos;
    parts.push(b);
    pos += b.length;
    return at;
  };
  const header = Buffer.from([0x49, 0x49, 42, 0, 0, 0, 0, 0]);
  append(header);
  const nextPointers: number[] = [];

  const place = (ifd: TinyIfd): number => {
    const blockOffsets = ifd.blocks.map((b) => append(b));
    const subOffsets = (ifd.subIfds ?? []).map((s) => place(s));
    const tags = [...ifd.tags];
    tags.push([ifd.strips ? 273 : 324, 4, blockOffsets]);
    tags.push([ifd.strips ? 279 : 325, 4, ifd.blocks.map((b) => b.length)]);
    if (subOffsets.length) tags.push([330, 13, subOffsets]);
    tags.sort((a, b) => a[0] - b[0]);
    const encoded = tags.map(([tag, type, values]) => {
      let data: Buffer;
      if (typeof values === 'string') data = Buffer.from(values + '\0', 'utf8');
      else if (Buffer.isBuffer(values)) data = values;
      else {
        const size = TYPE_SIZE[type]!;
        data = Buffer.alloc(values.length * size);
        values.forEach((v, i) => {
          if (size === 1) data.writeUInt8(v, i);
          else if (size === 2) data.writeUInt16LE(v, i * 2);
          else if (type === 5) { data.writeUInt32LE(v, i * 8); data.writeUInt32LE(1, i * 8 + 4); }
          else data.writeUInt32LE(v >>> 0, i * 4);
        });
      }
      const count = typeof values === 'string' || Buffer.isBuffer(values) ? data.length : values.length;
      return { tag, type, count, data, offset: data.length > 4 ? append(data) : -1 };
    });
    const table = Buffer.alloc(2 + encoded.length * 12 + 4);
    table.writeUInt16LE(encoded.length, 0);
    encoded.forEach((e, i) => {
      const p = 2 + i * 12;
      table.writeUInt16LE(e.tag, p);
      table.writeUInt16LE(e.type, p + 2);
      table.writeUInt32LE(e.count, p + 4);
      if (e.offset >= 0) table.writeUInt32LE(e.offset, p + 8);
      else e.data.copy(table, p + 8);
    });
    const at = append(table);
    nextPointers.push(at + table.length - 4);
    return at;
  };

  const mainOffsets: number[] = [];
  const mainNextPointers: number[] = [];
  for (const ifd of ifds) {
    mainOffsets.push(place(ifd));
    mainNextPointers.push(nextPointers[nextPointers.length - 1]!);
  }
  const out = Buffer.concat(parts);
  out.writeUInt32LE(mainOffsets[0]!, 4);
  for (let i = 0; i + 1 < mainOffsets.length; i++) out.writeUInt32LE(mainOffsets[i + 1]!, mainNextPointers[i]!);
  return out;
}

/** Tags of a tiled 8-bit RGB image. */
export function tiledRgbTags(width: number, height: number, tile: number, compression: number, extra: Array<[number, number, TagValue]> = []): Array<[number, number, TagValue]> {
  return [
    [256, 4, [width]], [257, 4, [height]], [258, 3, [8, 8, 8]], [259, 3, [compression]], [262, 3, [2]],
    [277, 3, [3]], [284, 3, [1]], [322, 3, [tile]], [323, 3, [tile]], ...extra,
  ];
}

/** Uncompressed RGB tiles of `tile × tile` cut from an RGB image (edge tiles padded with black). */
export function cutTiles(rgb: Buffer, width: number, height: number, tile: number): Buffer[] {
  const tiles: Buffer[] = [];
  for (let ty = 0; ty < Math.ceil(height / tile); ty++) {
    for (let tx = 0; tx < Math.ceil(width / tile); tx++) {
      const t = Buffer.alloc(tile * tile * 3);
      for (let y = 0; y < tile && ty * tile + y < height; y++) {
        const sx = tx * tile;
        const n = Math.min(tile, width - sx);
        rgb.copy(t, y * tile * 3, ((ty * tile + y) * width + sx) * 3, ((ty * tile + y) * width + sx + n) * 3);
      }
      tiles.push(t);
    }
  }
  return tiles;
}
