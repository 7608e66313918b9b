import { readFileSync } from 'node:fs';
import dicomParser from 'dicom-parser';

/**
 * A minimal explicit-VR little-endian DICOM writer for crafting test instances (TILED_SPARSE with
 * per-frame positions, Basic Offset Tables, split fragments, labels) from real frames. Test-only.
 */
export type Value = string | number[] | Buffer | Item[];
export type Item = Array<[number, string, Value]>;

const LONG_VRS = new Set(['OB', 'OW', 'OF', 'SQ', 'UT', 'UN']);

function u16(n: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; }
function u32(n: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; }

function valueBytes(vr: string, v: Value): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'latin1');
    return b.length % 2 ? Buffer.concat([b, Buffer.from(vr === 'UI' ? '\0' : ' ')]) : b;
  }
  if (vr === 'SQ') return Buffer.concat((v as Item[]).map((item) => { const body = encode(item); return Buffer.concat([u16(0xfffe), u16(0xe000), u32(body.length), body]); }));
  const nums = v as number[];
  const size = vr === 'US' || vr === 'SS' ? 2 : 4;
  const b = Buffer.alloc(nums.length * size);
  nums.forEach((n, i) => {
    if (vr === 'US') b.writeUInt16LE(n, 2 * i);
    else if (vr === 'UL') b.writeUInt32LE(n, 4 * i);
    else if (vr === 'SL') b.writeInt32LE(n, 4 * i);
    else if (vr === 'FL') b.writeFloatLE(n, 4 * i);
  });
  return b;
}

export function encode(elements: Item): Buffer {
  const sorted = [...elements].sort((a, b) => a[0] - b[0]);
  return Buffer.concat(sorted.map(([tag, vr, v]) => {
    const val = valueBytes(vr, v);
    const head = Buffer.concat([u16(tag >>> 16), u16(tag & 0xffff), Buffer.from(vr, 'latin1')]);
    return LONG_VRS.has(vr) ? Buffer.concat([head, u16(0), u32(val.length), val]) : Buffer.concat([head, u16(val.length), val]);
  }));
}

/** Encapsulated Pixel Data: offset table (optional) and each frame as `split` fragments. */
export function encapsulate(frames: Buffer[], withTable: boolean, split = 1): Buffer {
  const items: Buffer[] = [];
  const offsets: number[] = [];
  let at = 0;
  for (const f of frames) {
    offsets.push(at);
    const step = Math.ceil(f.length / split);
    for (let p = 0; p < f.length; p += step) {
      let part = f.subarray(p, Math.min(f.length, p + step));
      if (part.length % 2) part = Buffer.concat([part, Buffer.from([0])]);
      items.push(Buffer.concat([u16(0xfffe), u16(0xe000), u32(part.length), part]));
      at += 8 + part.length;
    }
  }
  const table = withTable ? Buffer.concat(offsets.map(u32)) : Buffer.alloc(0);
  return Buffer.concat([
    u16(0x7fe0), u16(0x0010), Buffer.from('OB'), u16(0), u32(0xffffffff),
    u16(0xfffe), u16(0xe000), u32(table.length), table, ...items,
    u16(0xfffe), u16(0xe0dd), u32(0),
  ]);
}

/** A Part 10 file: preamble, meta group, data set, then raw trailing bytes (Pixel Data). */
export function part10(sopClass: string, transferSyntax: string, dataset: Item, pixelData: Buffer): Buffer {
  const metaBody = encode([[0x00020001, 'OB', Buffer.from([0, 1])], [0x00020002, 'UI', sopClass], [0x00020003, 'UI', '1.2.3.4'], [0x00020010, 'UI', transferSyntax]]);
  const meta = Buffer.concat([encode([[0x00020000, 'UL', [metaBody.length]]]), metaBody]);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), meta, encode(dataset), pixelData]);
}

/** The JPEG frames of a real TILED_FULL instance, in file order. */
export function realFrames(path: string): Buffer[] {
  const buf = readFileSync(path);
  const ds = dicomParser.parseDicom(new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
  const el = ds.elements.x7fe00010!;
  return el.fragments!.map((f) => Buffer.from(buf.subarray(f.position, f.position + f.length)));
}
