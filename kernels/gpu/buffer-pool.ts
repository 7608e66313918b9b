/**
 * Reuse of GPU buffers between calls. Buffers are bucketed by usage and by size rounded up to a
 * power of two (at least 256 bytes), so a kernel called again with the same or a smaller shape gets
 * its scratch and staging buffers back without allocating. `release` only returns a buffer to the
 * pool; `destroy` frees everything the pool holds.
 */
export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>();
  private readonly sizes = new WeakMap<GPUBuffer, number>();
  /** Bytes currently held in free lists. */
  heldBytes = 0;

  constructor(private readonly device: GPUDevice, private readonly maxHeldBytes = 1 << 30) {}

  /** A buffer of at least `size` bytes with exactly `usage`, reused when one is free. */
  acquire(size: number, usage: GPUBufferUsageFlags, label = 'lamina-pooled'): GPUBuffer {
    const bucket = bucketSize(size);
    const list = this.free.get(key(bucket, usage));
    const reused = list?.pop();
    if (reused) {
      this.heldBytes -= bucket;
      return reused;
    }
    const buffer = this.device.createBuffer({ size: bucket, usage, label });
    this.sizes.set(buffer, bucket);
    return buffer;
  }

  /** Gives a buffer from `acquire` back; it is destroyed instead when the pool is full. */
  release(buffer: GPUBuffer): void {
    const bucket = this.sizes.get(buffer);
    if (bucket === undefined) throw new Error('BufferPool.release: buffer did not come from this pool');
    if (this.heldBytes + bucket > this.maxHeldBytes) {
      buffer.destroy();
      return;
    }
    const k = key(bucket, buffer.usage);
    const list = this.free.get(k) ?? [];
    list.push(buffer);
    this.free.set(k, list);
    this.heldBytes += bucket;
  }

  /** Destroys every free buffer (buffers still acquired are the caller's to destroy). */
  destroy(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.heldBytes = 0;
  }
}

function bucketSize(size: number): number {
  return Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(1, size))));
}

function key(bucket: number, usage: number): string {
  return `${bucket}:${usage}`;
}
