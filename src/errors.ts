/**
 * Lamina's error classes. Inner code throws these; only the edges translate them: the CLI prints
 * the message and exits non-zero, the HTTP API maps `status` to the response, workers make
 * `unrecoverable` errors fail the job without retries.
 */
export class LaminaError extends Error {
  /** HTTP status an API edge answers with. */
  readonly status: number = 500;
  /** True when retrying cannot help (a corrupt slide stays corrupt). */
  readonly unrecoverable: boolean = false;
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A parameter from a user (CLI flag, request body, job data) is out of its domain. */
export class InvalidParameterError extends LaminaError {
  override readonly status = 400;
  override readonly unrecoverable = true;
  constructor(message: string, options?: { cause?: unknown }) { super('invalid_parameter', message, options); }
}

/** The file is not a slide format Lamina reads, or uses a feature it does not support. */
export class UnsupportedSlideError extends LaminaError {
  override readonly status = 415;
  override readonly unrecoverable = true;
  constructor(message: string, options?: { cause?: unknown }) { super('unsupported_slide', message, options); }
}

/** The file claims to be a slide but its structure or data is broken. */
export class CorruptSlideError extends LaminaError {
  override readonly status = 422;
  override readonly unrecoverable = true;
  constructor(message: string, options?: { cause?: unknown }) { super('corrupt_slide', message, options); }
}

/** The input is well-formed but cannot be processed (no tissue, model/manifest mismatch, …). */
export class UnprocessableError extends LaminaError {
  override readonly status = 422;
  override readonly unrecoverable = true;
  constructor(message: string, options?: { cause?: unknown }) { super('unprocessable', message, options); }
}

export class NotFoundError extends LaminaError {
  override readonly status = 404;
  override readonly unrecoverable = true;
  constructor(message: string, options?: { cause?: unknown }) { super('not_found', message, options); }
}

/** A GPU adapter, driver or execution provider failed or is missing. */
export class DeviceError extends LaminaError {
  override readonly status = 503;
  constructor(message: string, options?: { cause?: unknown }) { super('device_error', message, options); }
}

/** The operation was cancelled through its AbortSignal. */
export class CancelledError extends LaminaError {
  override readonly status = 409;
  override readonly unrecoverable = true;
  constructor(message = 'cancelled', options?: { cause?: unknown }) { super('cancelled', message, options); }
}

/**
 * One wording for every bad-argument message (after sharp's `is.invalidParameterError`).
 * @example throw invalidParameter('tileSize', 'positive integer', 1.5)
 *   // Expected positive integer for tileSize but received 1.5 of type number
 */
export function invalidParameter(name: string, expected: string, actual: unknown): InvalidParameterError {
  const shown = typeof actual === 'string' ? JSON.stringify(actual) : String(actual);
  return new InvalidParameterError(`Expected ${expected} for ${name} but received ${shown} of type ${typeof actual}`);
}

/** Throws unless `value` is an integer in [min, max]. */
export function checkInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidParameter(name, `integer between ${min} and ${max}`, value);
  }
  return value;
}
