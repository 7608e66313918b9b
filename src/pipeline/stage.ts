/**
 * The stage contract shared by `lamina analyze` and the queue workers:
 * `(input, params, ctx) => Promise<output>`, with `ctx` carrying the AbortSignal, a progress
 * callback and a logger. Inputs and outputs that cross a queue are JSON or plain binary blobs.
 */
import { CancelledError } from '../errors.ts';

/** Progress of a stage in its own units (tiles for encode/score, steps otherwise). */
export interface StageProgress {
  stage: string;
  done: number;
  total: number;
}

/** Minimal logger (pino's method shape). */
export interface StageLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** What every stage receives besides its input and parameters. */
export interface StageContext {
  signal: AbortSignal;
  progress(update: StageProgress): void;
  log: StageLogger;
}

/** A stage: typed input, output and parameters. */
export type Stage<I, O, P> = (input: I, params: P, ctx: StageContext) => Promise<O>;

/** A context that reports nothing (tests, library use). */
export function quietContext(signal: AbortSignal = new AbortController().signal): StageContext {
  return { signal, progress: () => {}, log: { info: () => {}, warn: () => {} } };
}

/** Throws CancelledError naming what was interrupted. */
export function throwIfAborted(signal: AbortSignal, what: string): void {
  if (signal.aborted) throw new CancelledError(`${what} cancelled`);
}
