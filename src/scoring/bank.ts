/**
 * Reference bank file (`lamina fit-reference --out bank.lmb`):
 *
 *   bytes 0–7   ASCII magic "LMNBANK1"
 *   bytes 8–11  u32 LE: length H of the JSON header (≤ 1 MiB)
 *   H bytes     UTF-8 JSON `BankHeader` (format, version, model name, trained flag, embeddingSize,
 *               count, calibration, sources, parameters)
 *   the rest    count × embeddingSize little-endian float32, row-major
 *
 * The size of the rest must match the header exactly; the header is bounded before anything is
 * allocated from it.
 */
import { open, rename, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { UnprocessableError } from '../errors.ts';
import type { Calibration } from './calibration.ts';
import type { MemoryBank } from './knn.ts';

export const BANK_MAGIC = 'LMNBANK1';
const MAX_HEADER = 1 << 20;
const MAX_DIM = 65_536;
const MAX_ENTRIES = 10_000_000;

/** What a bank says about itself. */
export interface BankHeader {
  format: 'lamina-reference-bank';
  version: 1;
  model: { name: string; trained: boolean };
  embeddingSize: number;
  count: number;
  metric: 'l2';
  k: number;
  calibration: Calibration;
  /** Slides the bank was fitted from (file name, sha256, tissue tiles used). */
  sources: { name: string; sha256: string; tiles: number }[];
  /**
   * What the entries are: pooled tile embeddings ('tiles', the default when absent) or patch
   * tokens ('tokens': a tile scores as its worst token, see token-scores.ts).
   */
  entries?: 'tiles' | 'tokens';
  /** Embeddings seen before coreset subsampling. */
  totalEmbeddings: number;
  parameters: Record<string, unknown>;
}

/** A loaded bank. */
export interface ReferenceBank extends MemoryBank {
  header: BankHeader;
}

/** Writes a bank atomically (temporary file, then rename). */
export async function writeBank(path: string, header: BankHeader, data: Float32Array): Promise<void> {
  if (data.length !== header.count * header.embeddingSize) {
    throw new Error(`bank data has ${data.length} floats, header says ${header.count} × ${header.embeddingSize}`);
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(12);
  prefix.write(BANK_MAGIC, 0, 'ascii');
  prefix.writeUInt32LE(json.length, 8);
  const body = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i]!, i * 4);
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, Buffer.concat([prefix, json, body]));
  await rename(tmp, path);
}

/**
 * Reads and checks a bank file.
 * @throws UnprocessableError on a file that is not a bank or whose sizes disagree.
 */
export async function readBank(path: string): Promise<ReferenceBank> {
  const name = basename(path);
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const prefix = Buffer.alloc(12);
    await handle.read(prefix, 0, 12, 0);
    if (size < 12 || prefix.toString('ascii', 0, 8) !== BANK_MAGIC) {
      throw new UnprocessableError(`${name} is not a Lamina reference bank (no ${BANK_MAGIC} magic)`);
    }
    const headerLength = prefix.readUInt32LE(8);
    if (headerLength > MAX_HEADER || 12 + headerLength > size) {
      throw new UnprocessableError(`${name}: bank header length ${headerLength} is out of bounds (file is ${size} bytes)`);
    }
    const json = Buffer.alloc(headerLength);
    await handle.read(json, 0, headerLength, 12);
    let header: BankHeader;
    try {
      header = JSON.parse(json.toString('utf8')) as BankHeader;
    } catch (err) {
      throw new UnprocessableError(`${name}: bank header is not valid JSON`, { cause: err });
    }
    const dim = header.embeddingSize;
    const count = header.count;
    if (header.format !== 'lamina-reference-bank' || header.version !== 1) {
      throw new UnprocessableError(`${name}: unsupported bank format ${JSON.stringify(header.format)} version ${header.version}`);
    }
    if (!Number.isInteger(dim) || dim < 1 || dim > MAX_DIM || !Number.isInteger(count) || count < 1 || count > MAX_ENTRIES) {
      throw new UnprocessableError(`${name}: bank header has embeddingSize ${dim} and count ${count}, out of bounds`);
    }
    const expected = 12 + headerLength + count * dim * 4;
    if (size !== expected) {
      throw new UnprocessableError(`${name}: bank is ${size} bytes, header implies ${expected} (${count} × ${dim} float32)`);
    }
    const body = Buffer.alloc(count * dim * 4);
    await handle.read(body, 0, body.length, 12 + headerLength);
    const data = new Float32Array(count * dim);
    for (let i = 0; i < data.length; i++) data[i] = body.readFloatLE(i * 4);
    return { header, dim, count, data };
  } finally {
    await handle.close();
  }
}

/**
 * Refuses a bank whose embeddings cannot be compared with the model's.
 * @throws UnprocessableError naming both sizes and models.
 */
export function checkBankMatchesModel(bank: ReferenceBank, bankName: string, model: { name: string; embeddingSize: number }): void {
  if (bank.dim !== model.embeddingSize) {
    throw new UnprocessableError(
      `reference bank ${bankName} holds embeddings of size ${bank.dim} (model '${bank.header.model.name}'), but model '${model.name}' gives embeddings of size ${model.embeddingSize}; fit the bank with the same model`,
    );
  }
  if (bank.header.model.name !== model.name) {
    throw new UnprocessableError(
      `reference bank ${bankName} was fitted with model '${bank.header.model.name}', not '${model.name}'; fit the bank with the same model`,
    );
  }
}
