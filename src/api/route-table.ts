import { timingSafeEqual } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { InvalidParameterError } from '../errors.ts';
import { UnauthorizedError } from './http-errors.ts';

/** What a handler receives after validation. */
export interface Validated<P, Q, B> {
  params: P;
  query: Q;
  body: B;
}

/** A response an operation may give, for the OpenAPI document. */
export interface ResponseSpec {
  description: string;
  /** Defaults to application/json. */
  contentType?: string;
  schema?: z.ZodType;
}

/**
 * One HTTP operation: its inputs as zod schemas, its documented responses, and a thin handler
 * that calls one service function. The same object registers the Express route and writes the
 * OpenAPI entry, so the document cannot drift from the routes.
 */
export interface RouteSpec<P = any, Q = any, B = any> {
  method: 'get' | 'post' | 'delete';
  /** Express path, e.g. `/api/slides/:id`. */
  path: string;
  summary: string;
  tag: string;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  /** A JSON body (parsed with a 1 MB limit). */
  body?: z.ZodType<B>;
  /** A streamed body the handler reads itself (uploads); documented only. */
  streamBody?: Record<string, { schema: Record<string, unknown> }>;
  /** Needs the bearer token when LAMINA_API_TOKEN is set. */
  write?: boolean;
  responses: Record<number, ResponseSpec>;
  /** Extra middleware before validation (rate limits). */
  before?: express.RequestHandler[];
  /** Returns a JSON value (sent with the first 2xx status) or handles `res` itself and returns undefined. */
  handler(input: Validated<P, Q, B>, req: Request, res: Response): unknown;
}

/** Keeps the type of a spec's schemas flowing into its handler. */
export function route<P, Q, B>(spec: RouteSpec<P, Q, B>): RouteSpec<P, Q, B> {
  return spec;
}

function parse<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return value as T;
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const name = issue.path.map(String).join('.') || where;
  throw new InvalidParameterError(`Invalid ${where} field ${name}: ${issue.message}`);
}

/** Compares bearer tokens in constant time. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!.trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Registers every spec on `router`: token check, body parser, validation, handler. */
export function mount(router: Router, specs: readonly RouteSpec[], token: string | undefined): void {
  const json = express.json({ limit: '1mb' });
  for (const spec of specs) {
    const chain: express.RequestHandler[] = [];
    if (spec.write && token) {
      chain.push((req, _res, next) => next(tokenMatches(req.headers.authorization, token) ? undefined : new UnauthorizedError()));
    }
    chain.push(...(spec.before ?? []));
    if (spec.body) chain.push(json);
    const ok = Number(Object.keys(spec.responses).find((s) => s.startsWith('2')) ?? 200);
    chain.push(async (req, res) => {
      const input = {
        params: parse(spec.params, req.params, 'path'),
        query: parse(spec.query, req.query, 'query'),
        body: parse(spec.body, spec.body ? (req.body ?? {}) : undefined, 'body'),
      };
      const out = await spec.handler(input, req, res);
      if (out !== undefined && !res.headersSent) res.status(ok).json(out);
    });
    router[spec.method](spec.path, ...chain);
  }
}
