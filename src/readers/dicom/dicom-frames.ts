import { CorruptSlideError, UnsupportedSlideError } from '../../errors.ts';
import type { DicomInstance } from './dicom-header.ts';

/**
 * Finds the bytes of frame k in an instance's Pixel Data without reading the pixel data itself.
 * - Native (uncompressed) transfer syntaxes: frames are contiguous, `rows × columns × samples` each.
 * - Encapsulated: an item sequence — first the Basic Offset Table (often empty, as in the shared
 *   series written by wsi2dcm), then fragments. With a table, a frame is the fragments from its
 *   offset to the next; without one, one fragment per frame when the counts agree, else frames
 *   start at fragments that begin with a codestream start (JPEG SOI FFD8, J2K SOC FF4F, JP2 box).
 * The item headers are read once, lazily (8 bytes each), on the first frame request.
 */
export interface FrameSpan { parts: Array<{ offset: number; length: number }> }

const ITEM = 0xe000fffe; // (FFFE,E000) read as a little-endian uint32
const SEQ_END = 0xe0ddfffe; // (FFFE,E0DD)
/** Fragments one instance may have. */
const MAX_FRAGMENTS = 20_000_000;

const NATIVE = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1']);

export function isNative(transferSyntax: string): boolean {
  return NATIVE.has(transferSyntax);
}

export class FrameIndex {
  private spans: FrameSpan[] | null = null;
  private loading: Promise<FrameSpan[]> | null = null;

  constructor(private readonly inst: DicomInstance) {}

  /** Byte ranges of frame `index` (0-based). */
  async frame(index: number): Promise<FrameSpan> {
    const { inst } = this;
    if (index < 0 || index >= inst.frames) throw new CorruptSlideError(`${inst.name}: frame ${index + 1} of ${inst.frames} requested`);
    if (isNative(inst.transferSyntax)) {
      if (inst.bitsAllocated !== 8) throw new UnsupportedSlideError(`${inst.name}: ${inst.bitsAllocated}-bit native pixel data is not supported`);
      const bytes = inst.rows * inst.columns * inst.samplesPerPixel;
      const offset = inst.pixelDataOffset + index * bytes;
      const end = inst.pixelDataLength >= 0 ? inst.pixelDataOffset + inst.pixelDataLength : inst.source.size;
      if (offset + bytes > Math.min(end, inst.source.size)) {
        throw new CorruptSlideError(`${inst.name}: frame ${index + 1} (${bytes} bytes at ${offset}) lies past the end of the pixel data`);
      }
      return { parts: [{ offset, length: bytes }] };
    }
    this.loading ??= this.scan();
    this.spans ??= await this.loading;
    return this.spans[index]!;
  }

  private async scan(): Promise<FrameSpan[]> {
    const { inst } = this;
    const src = inst.source;
    if (inst.pixelDataLength >= 0) throw new CorruptSlideError(`${inst.name}: compressed transfer syntax ${inst.transferSyntax} but Pixel Data is not encapsulated`);
    let at = inst.pixelDataOffset;
    const header = async (): Promise<{ tag: number; length: number; peek: Buffer }> => {
      if (at + 8 > src.size) throw new CorruptSlideError(`${inst.name}: Pixel Data item at ${at} runs past the end of the file (${src.size} bytes)`);
      const buf = await src.read(at, Math.min(16, src.size - at));
      return { tag: buf.readUInt32LE(0), length: buf.readUInt32LE(4), peek: buf.subarray(8) };
    };
    const first = await header();
    if (first.tag !== ITEM) throw new CorruptSlideError(`${inst.name}: encapsulated Pixel Data does not start with an item`);
    if (first.length % 4 !== 0 || at + 8 + first.length > src.size) throw new CorruptSlideError(`${inst.name}: bad Basic Offset Table length ${first.length}`);
    const table = first.length > 0 ? await src.read(at + 8, first.length) : null;
    at += 8 + first.length;
    const itemsStart = at;
    const fragments: Array<{ item: number; offset: number; length: number; startsCodestream: boolean }> = [];
    for (;;) {
      const h = await header();
      if (h.tag === SEQ_END) break;
      if (h.tag !== ITEM) throw new CorruptSlideError(`${inst.name}: unexpected tag 0x${h.tag.toString(16)} among Pixel Data fragments at ${at}`);
      if (at + 8 + h.length > src.size) throw new CorruptSlideError(`${inst.name}: fragment of ${h.length} bytes at ${at} runs past the end of the file`);
      if (fragments.length >= MAX_FRAGMENTS) throw new CorruptSlideError(`${inst.name}: more than ${MAX_FRAGMENTS} fragments`);
      fragments.push({ item: at - itemsStart, offset: at + 8, length: h.length, startsCodestream: startsCodestream(h.peek) });
      at += 8 + h.length;
      if (at >= src.size) break; // a missing sequence delimiter is tolerated
    }
    const frames = inst.frames;
    const spans: FrameSpan[] = [];
    if (table) {
      if (table.length / 4 < frames) throw new CorruptSlideError(`${inst.name}: Basic Offset Table has ${table.length / 4} entries for ${frames} frames`);
      let f = 0;
      for (let k = 0; k < frames; k++) {
        const start = table.readUInt32LE(4 * k);
        const stop = k + 1 < frames ? table.readUInt32LE(4 * (k + 1)) : Infinity;
        while (f < fragments.length && fragments[f]!.item < start) f++;
        if (f >= fragments.length || fragments[f]!.item !== start) throw new CorruptSlideError(`${inst.name}: Basic Offset Table entry ${k} (${start}) is not a fragment start`);
        const parts = [];
        while (f < fragments.length && fragments[f]!.item < stop) parts.push(fragments[f++]!);
        spans.push({ parts });
      }
      return spans;
    }
    if (fragments.length === frames) return fragments.map((p) => ({ parts: [p] }));
    for (const p of fragments) {
      if (p.startsCodestream || spans.length === 0) spans.push({ parts: [p] });
      else spans[spans.length - 1]!.parts.push(p);
    }
    if (spans.length !== frames) throw new CorruptSlideError(`${inst.name}: found ${spans.length} frames in ${fragments.length} fragments, NumberOfFrames says ${frames}`);
    return spans;
  }
}

function startsCodestream(b: Buffer): boolean {
  if (b.length >= 2 && b[0] === 0xff && (b[1] === 0xd8 || b[1] === 0x4f)) return true;
  return b.length >= 8 && b.readUInt32BE(0) === 12 && b.toString('latin1', 4, 8) === 'jP  ';
}
