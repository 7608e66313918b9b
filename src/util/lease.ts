/**
 * A resource that overlapping callers use at once and that may be retired (replaced, evicted,
 * closed) while some of them still hold it: disposed exactly once, when it is retired and its last
 * holder has released it. Optionally retired by itself after `idleMs` unheld, on an unref'd timer,
 * so a kept resource never holds the process open. Behind the engine's plans, the kept ORT kNN
 * session and the GPU token scorers.
 *
 * A failing dispose is reported (`onError`, else a warning), never thrown: disposal runs from the
 * last `release`, a timer or an eviction, where the caller cannot act on it.
 *
 * @example
 * const lease = new Lease(session, (s) => s.close(), { idleMs: 60_000 });
 * const s = lease.acquire(); try { await s.run(); } finally { lease.release(); }
 * await lease.retire(); // after the runs in flight end
 */
export interface LeaseOptions {
  /** Retire after this long with no holder; undefined: only when `retire` is called. */
  idleMs?: number;
  /** What the default warning names. @defaultValue 'a shared resource' */
  name?: string;
  /** Receives a dispose's error. @defaultValue a console warning */
  onError?: (err: unknown) => void;
}

export class Lease<T> {
  private holders = 0;
  private timer?: ReturnType<typeof setTimeout>;
  private disposal?: Promise<void>;
  private settle?: () => void;

  constructor(readonly value: T, private readonly dispose: (value: T) => void | Promise<void>, private readonly options: LeaseOptions = {}) {}

  /** The value, held until `release`. A retired lease is no longer handed out: its owner must have dropped it. */
  acquire(): T {
    if (this.disposal) throw new Error(`${this.options.name ?? 'lease'} acquired after it was retired`);
    clearTimeout(this.timer);
    this.holders++;
    return this.value;
  }

  release(): void {
    if (this.holders === 0) throw new Error(`${this.options.name ?? 'lease'} released more often than acquired`);
    if (--this.holders > 0) return;
    if (this.disposal) this.free();
    else if (this.options.idleMs !== undefined) this.timer = setTimeout(() => void this.retire(), this.options.idleMs).unref();
  }

  /** Disposes now, or when the last holder releases; resolves once disposed (never rejects). */
  retire(): Promise<void> {
    if (!this.disposal) {
      this.disposal = new Promise((resolve) => { this.settle = resolve; });
      clearTimeout(this.timer);
      if (this.holders === 0) this.free();
    }
    return this.disposal;
  }

  get retired(): boolean {
    return this.disposal !== undefined;
  }

  /** Callers between `acquire` and `release` (tests, diagnostics). */
  get held(): number {
    return this.holders;
  }

  private free(): void {
    const report = (err: unknown) => {
      if (this.options.onError) this.options.onError(err);
      else console.warn(`lamina: disposing ${this.options.name ?? 'a shared resource'} failed: ${(err as Error)?.message ?? err}`);
    };
    // Synchronous disposers run inside the call that freed them (the engine destroys buffers before it
    // goes on), asynchronous ones are awaited by `retire`'s promise.
    let done: void | Promise<void> = undefined;
    try {
      done = this.dispose(this.value);
    } catch (err) {
      report(err);
    }
    Promise.resolve(done).catch(report).finally(this.settle);
  }
}
