/**
 * A temporary file of batch outputs for the one-process runner: embeddings go to disk as they are
 * made and are read back batch by batch, so memory does not grow with the number of tiles.
 *
 * The file holds each batch's float32 embeddings and float64 scores back to back (the batch's
 * start, count and dim stay in a small in-memory index, a few bytes a tile). Reading fills one
 * reused pair of arrays: a pass over the spill allocates nothing per batch, so scoring's passes
 * leave no garbage that grows with the slide. The price: a batch read back is valid only until the
 * next one is requested (copy what must outlive it).
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import { UnprocessableError } from '../errors.ts';
import type { BatchOutput } from './batch.ts';

interface SpillEntry {
  offset: number;
  start: number;
  count: number;
  dim: number;
  hasScores: boolean;
}

/** Append-only store of batch outputs with re-iterable reading. */
export class EmbeddingSpill {
  private handle: FileHandle | null = null;
  private readonly entries: SpillEntry[] = [];
  private size = 0;

  constructor(readonly path: string) {}

  /** Appends one batch output (its arrays are written as they are, not copied). */
  async append(out: BatchOutput): Promise<void> {
    this.handle ??= await open(this.path, 'w+');
    const offset = this.size;
    const embeddings = bytesOf(out.embeddings.subarray(0, out.count * out.dim));
    await writeFully(this.handle, embeddings, offset);
    if (out.rawScores) await writeFully(this.handle, bytesOf(out.rawScores.subarray(0, out.count)), offset + embeddings.length);
    this.entries.push({ offset, start: out.start, count: out.count, dim: out.dim, hasScores: out.rawScores !== null });
    this.size += embeddings.length + (out.rawScores ? out.count * 8 : 0);
  }

  /**
   * Reads the batches back in the order they were appended. Each yielded output's arrays are views
   * of buffers reused for the next batch: use (or copy) them before asking for the next one.
   */
  async *read(): AsyncIterable<BatchOutput> {
    const handle = this.handle;
    if (!handle) return;
    let embeddings = new Float32Array(0);
    let scores = new Float64Array(0);
    for (const { offset, start, count, dim, hasScores } of this.entries) {
      if (embeddings.length < count * dim) embeddings = new Float32Array(count * dim);
      if (hasScores && scores.length < count) scores = new Float64Array(count);
      const emb = embeddings.subarray(0, count * dim);
      await readFully(handle, bytesOf(emb), offset, this.path);
      const raw = hasScores ? scores.subarray(0, count) : null;
      if (raw) await readFully(handle, bytesOf(raw), offset + emb.byteLength, this.path);
      yield { start, count, dim, embeddings: emb, rawScores: raw };
    }
  }

  /** Closes and deletes the file; safe to call twice. */
  async dispose(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close().catch(() => {});
    await rm(this.path, { force: true });
  }
}

function bytesOf(a: Float32Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

async function readFully(handle: FileHandle, bytes: Uint8Array, position: number, path: string): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesRead } = await handle.read(bytes, done, bytes.length - done, position + done);
    if (bytesRead === 0) throw new UnprocessableError(`${path}: embedding spill is shorter than written (truncated?)`);
    done += bytesRead;
  }
}
