import type { ByteSource } from '../../io/byte-source.ts';

/**
 * geotiff's BaseSource contract (`fetch(slices, signal)` → ArrayBuffers) over a Lamina ByteSource.
 * geotiff asks for fixed-size windows (1 KiB headers, IFD guesses) that may run past the end of a
 * small file; like geotiff's own file source, those come back short instead of failing.
 */
export class GeotiffSource {
  constructor(private readonly source: ByteSource) {}

  get fileSize(): number { return this.source.size; }

  async fetch(slices: Array<{ offset: number; length: number }>): Promise<ArrayBuffer[]> {
    return Promise.all(slices.map(async ({ offset, length }) => {
      const start = Math.max(0, Math.min(offset, this.source.size));
      const end = Math.max(start, Math.min(offset + length, this.source.size));
      const buf = await this.source.read(start, end - start);
      // DataSlice wraps the whole ArrayBuffer, so hand it a private copy rather than a pooled one.
      return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
    }));
  }

  async fetchSlice(slice: { offset: number; length: number }) {
    const [data] = await this.fetch([slice]);
    return { ...slice, data: data! };
  }

  async close(): Promise<void> {}
}
