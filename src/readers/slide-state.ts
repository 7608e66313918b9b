import { CorruptSlideError, InvalidParameterError, LaminaError } from '../errors.ts';

/**
 * OpenSlide's sticky error state, as exceptions: the first structural failure (CorruptSlideError)
 * is rethrown on every later call, other errors pass through, foreign errors are wrapped as
 * corrupt-slide errors naming the file, and calls after `close()` are refused. Shared by every
 * format's Slide so the contract in types.ts holds alike for all.
 */
export class SlideState {
  private failure: LaminaError | null = null;
  private closed = false;

  constructor(private readonly name: string) {}

  /** Runs one slide operation under the sticky state. */
  async guard<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new InvalidParameterError(`${this.name}: slide is closed`);
    if (this.failure) throw this.failure;
    try {
      return await fn();
    } catch (err) {
      const e = err instanceof LaminaError ? err : new CorruptSlideError(`${this.name}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      if (e instanceof CorruptSlideError) this.failure = e;
      throw e;
    }
  }

  /** Marks the slide closed; false when it already was (close() is idempotent). */
  markClosed(): boolean {
    if (this.closed) return false;
    this.closed = true;
    return true;
  }
}
