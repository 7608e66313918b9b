/**
 * GPU time of compute passes through timestamp queries. One query set of `capacity` pairs; a pass
 * takes `passTimestamps()` as its `timestampWrites`, and `read()` resolves every pair written since
 * the last `reset()` into nanoseconds. Create the context with timestamp quantization off (the
 * default toggles in gpu-context.ts do) or the times are rounded to 100 µs.
 */
export class GpuTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private readonly staging: GPUBuffer;
  private used = 0;

  constructor(private readonly device: GPUDevice, readonly capacity = 64) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: capacity * 2, label: 'lamina-timer' });
    const bytes = capacity * 2 * 8;
    this.resolve = device.createBuffer({ size: bytes, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  /** The `timestampWrites` for the next pass; throws when all pairs are used. */
  passTimestamps(): GPUComputePassTimestampWrites {
    if (this.used >= this.capacity) throw new Error(`GpuTimer: more than ${this.capacity} timed passes before read()`);
    const i = this.used++;
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Nanoseconds of each pass timed since the last read, in order; resets the timer. */
  async read(): Promise<number[]> {
    const n = this.used;
    this.used = 0;
    if (n === 0) return [];
    const enc = this.device.createCommandEncoder();
    enc.resolveQuerySet(this.querySet, 0, 2 * n, this.resolve, 0);
    enc.copyBufferToBuffer(this.resolve, 0, this.staging, 0, 2 * n * 8);
    this.device.queue.submit([enc.finish()]);
    await this.staging.mapAsync(GPUMapMode.READ, 0, 2 * n * 8);
    const t = new BigUint64Array(this.staging.getMappedRange(0, 2 * n * 8).slice(0));
    this.staging.unmap();
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(Number(t[2 * i + 1]! - t[2 * i]!));
    return out;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolve.destroy();
    this.staging.destroy();
  }
}
