/**
 * A temporary file of batch outputs for the one-process runner: embeddings go to disk as they are
 * made and are read back batch by batch, so memory does not grow with the number of tiles.
 */
import { open, rm, type FileHandle } from 'node:fs/promises';
import { decodeBatchOutput, encodeBatchOutput, type BatchOutput } from './batch.ts';

/** Append-only store of batch outputs with re-iterable reading. */
export class EmbeddingSpill {
  private handle: FileHandle | null = null;
  private readonly entries: { offset: number; length: number }[] = [];
  private size = 0;

  constructor(readonly path: string) {}

  /** Appends one batch output. */
  async append(out: BatchOutput): Promise<void> {
    this.handle ??= await open(this.path, 'w+');
    const bytes = encodeBatchOutput(out);
    await this.handle.write(bytes, 0, bytes.length, this.size);
    this.entries.push({ offset: this.size, length: bytes.length });
    this.size += bytes.length;
  }

  /** Reads the batches back in the order they were appended. */
  async *read(): AsyncIterable<BatchOutput> {
    if (!this.handle) return;
    for (const { offset, length } of this.entries) {
      const bytes = Buffer.alloc(length);
      await this.handle.read(bytes, 0, length, offset);
      yield decodeBatchOutput(bytes);
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
