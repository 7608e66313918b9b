import { open, type FileHandle } from 'node:fs/promises';
import { CorruptSlideError } from '../errors.ts';

/**
 * The whole I/O contract of a reader: random reads of byte ranges. Readers never touch `fs`
 * themselves, so a file, an HTTP range source or an object store can stand behind them.
 */
export interface ByteSource {
  /** A name for messages (file name, URL). */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Reads exactly `length` bytes at `offset`; throws CorruptSlideError on a short read. */
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Largest single read a reader may ask for: a bound against lengths taken from untrusted headers. */
export const MAX_READ_BYTES = 256 * 1024 * 1024;

export class FileSource implements ByteSource {
  private constructor(readonly name: string, readonly size: number, private handle: FileHandle | null) {}

  static async open(path: string, name = path): Promise<FileSource> {
    const handle = await open(path, 'r');
    const stat = await handle.stat();
    if (!stat.isFile()) {
      await handle.close();
      throw new CorruptSlideError(`${name}: not a regular file`);
    }
    return new FileSource(name, stat.size, handle);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (!this.handle) throw new Error(`${this.name}: read after close`);
    checkRange(this, offset, length);
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done < length) throw new CorruptSlideError(`${this.name}: short read at offset ${offset}: ${done} < ${length} bytes`);
    return buf;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = null;
    await h?.close();
  }
}

export class MemorySource implements ByteSource {
  constructor(readonly name: string, private readonly data: Buffer) {}
  get size(): number { return this.data.length; }
  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    return this.data.subarray(offset, offset + length);
  }
  async close(): Promise<void> {}
}

function checkRange(src: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new CorruptSlideError(`${src.name}: invalid byte range offset=${offset} length=${length}`);
  }
  if (length > MAX_READ_BYTES) {
    throw new CorruptSlideError(`${src.name}: refusing a ${length}-byte read at offset ${offset} (limit ${MAX_READ_BYTES})`);
  }
  if (offset + length > src.size) {
    throw new CorruptSlideError(`${src.name}: range ${offset}+${length} points past the end of the file (${src.size} bytes)`);
  }
}
