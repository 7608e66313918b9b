import { LaminaError } from '../errors.ts';

/** Errors only the HTTP edge raises; the rest come from src/errors.ts. */
export class PayloadTooLargeError extends LaminaError {
  override readonly status = 413;
  override readonly unrecoverable = true;
  constructor(message: string) { super('payload_too_large', message); }
}

export class UnauthorizedError extends LaminaError {
  override readonly status = 401;
  override readonly unrecoverable = true;
  constructor(message = 'missing or wrong bearer token (Authorization: Bearer <LAMINA_API_TOKEN>)') { super('unauthorized', message); }
}

export class TooManyRequestsError extends LaminaError {
  override readonly status = 429;
  constructor(readonly retryAfterS: number) { super('too_many_requests', `too many uploads; retry in ${retryAfterS} s`); }
}

export class ConflictError extends LaminaError {
  override readonly status = 409;
  override readonly unrecoverable = true;
  constructor(message: string) { super('conflict', message); }
}

export class UnavailableError extends LaminaError {
  override readonly status = 503;
  constructor(message: string, options?: { cause?: unknown }) { super('unavailable', message, options); }
}
