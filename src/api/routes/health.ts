import { z } from 'zod';
import { UnavailableError } from '../http-errors.ts';
import { errorSchema } from '../openapi.ts';
import { route, type RouteSpec } from '../route-table.ts';
import type { ApiContext } from '../context.ts';

/** Liveness (the process answers) and readiness (Redis answers). */
export function healthRoutes(ctx: ApiContext): RouteSpec[] {
  return [
    route({
      method: 'get', path: '/healthz', tag: 'health', summary: 'Liveness: the process answers',
      responses: { 200: { description: 'Alive', schema: z.object({ ok: z.literal(true), version: z.string() }) } },
      handler: () => ({ ok: true, version: ctx.version }),
    }),
    route({
      method: 'get', path: '/readyz', tag: 'health', summary: 'Readiness: Redis answers a PING',
      responses: { 200: { description: 'Ready', schema: z.object({ ok: z.literal(true) }) }, 503: { description: 'Redis unreachable', schema: errorSchema } },
      async handler() {
        if (!ctx.analyses) throw new UnavailableError('no queue configured (REDIS_URL)');
        try {
          await ctx.analyses.ping();
        } catch (err) {
          throw new UnavailableError(`Redis unreachable: ${(err as Error).message}`, { cause: err });
        }
        return { ok: true };
      },
    }),
  ];
}
