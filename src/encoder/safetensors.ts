/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian header length, a JSON header `{name: {dtype, shape, data_offsets: [begin, end]},
 * "__metadata__": {…}}`, then the raw little-endian tensor bytes. Float tensors (F32, F16, BF16,
 * F64) are read as float32. Files are read tensor by tensor, so a multi-GB checkpoint never sits
 * in memory twice.
 */
import { open, writeFile } from 'node:fs/promises';
import { UnprocessableError } from '../errors.ts';
import { decodeBfloat16, decodeFloat16, encodeFloat16 } from './float16.ts';
import type { Tensor } from './vit-config.ts';

/** The header length we accept; HF's own reader refuses headers over 100 MB. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1, U16: 2, U32: 4, U64: 8,
};
const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16']);

/** One header entry, checked against the data size. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** Byte range within the data section (after the header). */
  begin: number;
  end: number;
}

/** An opened safetensors file: its header, and tensors on demand. */
export interface SafetensorsFile {
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  /** Reads one float tensor as float32. */
  read(name: string): Promise<Tensor>;
  close(): Promise<void>;
}

/**
 * Parses and checks a header: bounded length, valid JSON, known dtypes, byte ranges inside the
 * data and matching their shapes. `source` names the file in messages.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, dataBytes: number, source: string): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw new UnprocessableError(`${source}: safetensors header is not valid UTF-8 JSON`, { cause: err });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new UnprocessableError(`${source}: safetensors header is not a JSON object`);
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = Object.fromEntries(Object.entries((raw ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const bad = (why: string) => new UnprocessableError(`${source}: tensor '${name}': ${why}`);
    if (typeof e?.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) throw bad(`unknown dtype ${JSON.stringify(e?.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((v) => Number.isSafeInteger(v) && v >= 0)) throw bad('shape is not a list of non-negative integers');
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((v) => Number.isSafeInteger(v) && v >= 0)) throw bad('data_offsets is not [begin, end]');
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataBytes) throw bad(`data_offsets [${begin}, ${end}] lie outside the ${dataBytes} data bytes`);
    const numel = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (numel * DTYPE_BYTES[e.dtype]! !== end - begin) throw bad(`shape [${e.shape}] of ${e.dtype} needs ${numel * DTYPE_BYTES[e.dtype]!} bytes, data_offsets give ${end - begin}`);
    entries.set(name, { dtype: e.dtype, shape: e.shape as number[], begin, end });
  }
  return { entries, metadata };
}

/**
 * Opens a safetensors file and checks its header.
 * @throws UnprocessableError for a header that is too long, malformed or inconsistent.
 */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const lenBuf = Buffer.alloc(8);
    if (size < 8 || (await fh.read(lenBuf, 0, 8, 0)).bytesRead !== 8) throw new UnprocessableError(`${path}: not a safetensors file (shorter than 8 bytes)`);
    const headerLen = lenBuf.readBigUInt64LE(0);
    if (headerLen > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) {
      throw new UnprocessableError(`${path}: not a safetensors file (header length ${headerLen} exceeds ${Math.min(MAX_HEADER_BYTES, size - 8)} bytes)`);
    }
    const header = Buffer.alloc(Number(headerLen));
    await fh.read(header, 0, header.length, 8);
    const dataStart = 8 + header.length;
    const { entries, metadata } = parseSafetensorsHeader(header, size - dataStart, path);
    return {
      entries, metadata,
      async read(name) {
        const e = entries.get(name);
        if (!e) throw new UnprocessableError(`${path}: no tensor '${name}'`);
        const bytes = Buffer.alloc(e.end - e.begin);
        await fh.read(bytes, 0, bytes.length, dataStart + e.begin);
        return { shape: [...e.shape], data: toFloat32(bytes, e.dtype, `${path}: tensor '${name}'`) };
      },
      close: () => fh.close(),
    };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Reads every float tensor of a file (names filtered by `keep`). */
export async function readSafetensors(path: string, keep: (name: string) => boolean = () => true): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  const file = await openSafetensors(path);
  try {
    const tensors = new Map<string, Tensor>();
    for (const name of file.entries.keys()) if (keep(name)) tensors.set(name, await file.read(name));
    return { tensors, metadata: { ...file.metadata } };
  } finally {
    await file.close();
  }
}

/** Decodes a whole safetensors file held in memory. */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors'): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new UnprocessableError(`${source}: not a safetensors file (shorter than 8 bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(Math.min(MAX_HEADER_BYTES, bytes.length - 8))) {
    throw new UnprocessableError(`${source}: not a safetensors file (header length ${headerLen} exceeds ${Math.min(MAX_HEADER_BYTES, bytes.length - 8)} bytes)`);
  }
  const dataStart = 8 + Number(headerLen);
  const { entries, metadata } = parseSafetensorsHeader(bytes.subarray(8, dataStart), bytes.length - dataStart, source);
  const tensors = new Map<string, Tensor>();
  for (const [name, e] of entries) {
    tensors.set(name, { shape: [...e.shape], data: toFloat32(bytes.subarray(dataStart + e.begin, dataStart + e.end), e.dtype, `${source}: tensor '${name}'`) });
  }
  return { tensors, metadata };
}

/**
 * Encodes float32 tensors as safetensors (F32, or F16 rounding to nearest). Tensors are laid out
 * in name order and the header is padded with spaces to 8 bytes, as HF's writer does, so the
 * bytes depend only on the input.
 */
export function encodeSafetensors(tensors: ReadonlyMap<string, Tensor>, options: { dtype?: 'F32' | 'F16'; metadata?: Record<string, string> } = {}): Uint8Array {
  const dtype = options.dtype ?? 'F32';
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const bytes = dtype === 'F16' ? encodeFloat16(t.data) : new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  while ((Buffer.byteLength(json) % 8) !== 0) json += ' ';
  const headerBytes = Buffer.from(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

/** Writes tensors to a safetensors file (see {@link encodeSafetensors}). */
export async function writeSafetensors(path: string, tensors: ReadonlyMap<string, Tensor>, options: Parameters<typeof encodeSafetensors>[1] = {}): Promise<void> {
  await writeFile(path, encodeSafetensors(tensors, options));
}

function toFloat32(bytes: Uint8Array, dtype: string, what: string): Float32Array {
  if (!FLOAT_DTYPES.has(dtype)) throw new UnprocessableError(`${what}: dtype ${dtype} is not a float type`);
  if (dtype === 'F16') return decodeFloat16(bytes);
  if (dtype === 'BF16') return decodeBfloat16(bytes);
  // Copy into an aligned buffer: the data section need not be 4- or 8-byte aligned.
  const copy = new Uint8Array(bytes);
  if (dtype === 'F32') return new Float32Array(copy.buffer);
  return Float32Array.from(new Float64Array(copy.buffer));
}
