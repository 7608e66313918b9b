import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { LaminaError, NotFoundError } from '../errors.ts';
import { TooManyRequestsError } from './http-errors.ts';

/**
 * The one place errors become responses: a LaminaError answers its `status` with its code and
 * message; anything else is a 500 whose detail goes to the log, not the client.
 */
export function errorHandler(log?: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    let status = 500, code = 'internal', message = 'internal error';
    if (err instanceof LaminaError) {
      ({ status, code, message } = err);
    } else if (err?.type === 'entity.parse.failed' || err?.type === 'entity.too.large') {
      // body-parser's errors carry a status of their own
      status = err.status ?? 400; code = status === 413 ? 'payload_too_large' : 'invalid_body'; message = err.message;
    } else {
      log?.error({ err, url: req.originalUrl }, 'request failed');
    }
    if (err instanceof TooManyRequestsError) res.setHeader('Retry-After', String(err.retryAfterS));
    if (status === 413) res.setHeader('Connection', 'close');
    res.status(status).json({ error: { code, message } });
    void next;
  };
}

/** JSON 404 for any path no route took. */
export const notFound: RequestHandler = (req, _res, next) => next(new NotFoundError(`no route for ${req.method} ${req.path}`));

/**
 * A token bucket per client address: `perMinute` requests refill evenly, bursts up to `burst`.
 * Enough for uploads, which are few and heavy; a shared limiter (Redis) can replace it behind a proxy.
 */
export function rateLimit(perMinute: number, burst = Math.max(1, Math.ceil(perMinute / 6))): RequestHandler {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (req, _res, next) => {
    if (perMinute <= 0) return next();
    const key = req.ip ?? req.socket.remoteAddress ?? '?';
    const now = Date.now();
    const b = buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 60_000) * perMinute);
    b.at = now;
    buckets.set(key, b);
    if (buckets.size > 10_000) buckets.clear();
    if (b.tokens < 1) return next(new TooManyRequestsError(Math.ceil(((1 - b.tokens) * 60) / perMinute)));
    b.tokens -= 1;
    next();
  };
}
