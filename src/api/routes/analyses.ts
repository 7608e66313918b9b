import { z } from 'zod';
import { NotFoundError } from '../../errors.ts';
import { keys } from '../../storage/records.ts';
import { UnavailableError } from '../http-errors.ts';
import { errorSchema } from '../openapi.ts';
import { route, type RouteSpec } from '../route-table.ts';
import type { AnalysisService, ApiContext } from '../context.ts';
import { idParams } from './slides.ts';
import { analysisParamsSchema } from '../../../pipelines/anomaly.ts';

export const analysisSchema = z.object({
  id: z.string(), slideId: z.string(), params: z.record(z.string(), z.unknown()),
  state: z.enum(['queued', 'planning', 'running', 'aggregating', 'completed', 'failed', 'cancelled']),
  reason: z.string().optional(), createdAt: z.string(), startedAt: z.string().optional(), finishedAt: z.string().optional(),
  tilesTotal: z.number().optional(), batchesTotal: z.number().optional(), score: z.number().nullable().optional(),
  timings: z.record(z.string(), z.number()).optional(), runs: z.number(),
  progress: z.object({ batchesDone: z.number(), batchesTotal: z.number(), tilesDone: z.number(), tilesTotal: z.number(), fraction: z.number() }),
});

/** Result files an analysis writes, with their content types. */
export const RESULT_FILES: Record<string, string> = {
  'result.json': 'application/json',
  'heatmap.png': 'image/png',
  'regions.geojson': 'application/geo+json',
  'tiles.csv': 'text/csv; charset=utf-8',
  'scores.f32': 'application/octet-stream',
};

const err = (description: string) => ({ description, schema: errorSchema });

export function requireQueue(ctx: ApiContext): AnalysisService {
  if (!ctx.analyses) throw new UnavailableError('the queue is not configured (REDIS_URL); analyses are unavailable');
  return ctx.analyses;
}

/** Queue, watch, cancel analyses and fetch their results. */
export function analysisRoutes(ctx: ApiContext): RouteSpec[] {
  return [
    route({
      method: 'post', path: '/api/slides/:id/analyses', tag: 'analyses', write: true, params: idParams,
      body: analysisParamsSchema.partial(),
      summary: 'Queue an analysis of a slide. The same slide with the same parameters is not redone: the existing analysis is returned (a failed or cancelled one is queued again).',
      responses: {
        202: { description: 'Queued (or already there)', schema: analysisSchema },
        400: err('Invalid parameters'), 401: err('Missing or wrong bearer token'), 404: err('No such slide'), 503: err('Queue unavailable'),
      },
      async handler({ params, body }, _req, res) {
        await ctx.records.slide(params.id);
        const { analysis } = await requireQueue(ctx).submit(params.id, body);
        res.status(202).setHeader('Location', `/api/analyses/${analysis.id}`).json(analysis);
        return undefined;
      },
    }),
    route({
      method: 'get', path: '/api/analyses', tag: 'analyses', summary: 'All analyses, optionally of one slide',
      query: z.object({ slide: z.string().optional() }),
      responses: { 200: { description: 'Analyses', schema: z.object({ analyses: z.array(analysisSchema) }) } },
      handler: async ({ query }) => ({ analyses: await requireQueue(ctx).list(query.slide) }),
    }),
    route({
      method: 'get', path: '/api/analyses/:id', tag: 'analyses', params: idParams, summary: 'State, progress and timings of an analysis',
      responses: { 200: { description: 'The analysis', schema: analysisSchema }, 404: err('No such analysis') },
      handler: ({ params }) => requireQueue(ctx).get(params.id),
    }),
    route({
      method: 'delete', path: '/api/analyses/:id', tag: 'analyses', write: true, params: idParams,
      summary: 'Cancel an analysis: running batches stop at their next check, waiting ones are removed',
      responses: { 200: { description: 'Cancelled (or already finished)', schema: analysisSchema }, 404: err('No such analysis'), 401: err('Missing or wrong bearer token') },
      handler: ({ params }) => requireQueue(ctx).cancel(params.id),
    }),
    route({
      method: 'get', path: '/api/analyses/:id/events', tag: 'analyses', params: idParams,
      summary: 'Server-sent events: an `analysis` event with the full state whenever it changes, until it is finished',
      responses: { 200: { description: 'text/event-stream of `analysis` events', contentType: 'text/event-stream', schema: z.string() }, 404: err('No such analysis') },
      async handler({ params }, req, res) {
        const q = requireQueue(ctx);
        let last = JSON.stringify(await q.get(params.id));
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
        res.write(`retry: 2000\nevent: analysis\ndata: ${last}\n\n`);
        let busy = false, closed = false;
        const push = async () => {
          if (busy || closed) return;
          busy = true;
          try {
            const now = JSON.stringify(await q.get(params.id));
            if (now !== last) {
              last = now;
              res.write(`event: analysis\ndata: ${now}\n\n`);
            }
            if (['completed', 'failed', 'cancelled'].includes(JSON.parse(now).state)) finish();
          } catch (e) {
            // the analysis was deleted: say so and stop
            res.write(`event: error\ndata: ${JSON.stringify({ error: { message: (e as Error).message } })}\n\n`);
            finish();
          } finally {
            busy = false;
          }
        };
        const unwatch = q.watch(params.id, () => void push());
        // Events can be missed (a reconnecting QueueEvents); a slow poll and a comment keep it honest and alive.
        const timer = setInterval(() => { res.write(': ping\n\n'); void push(); }, 5000);
        function finish() {
          if (closed) return;
          closed = true;
          clearInterval(timer);
          unwatch();
          res.end();
        }
        req.on('close', finish);
        if (['completed', 'failed', 'cancelled'].includes(JSON.parse(last).state)) finish();
        return undefined;
      },
    }),
    route({
      method: 'get', path: '/api/analyses/:id/:file', tag: 'analyses',
      params: z.object({ id: idParams.shape.id, file: z.enum(Object.keys(RESULT_FILES) as [string, ...string[]]) }),
      summary: 'A result file: result.json, heatmap.png, regions.geojson, tiles.csv',
      responses: { 200: { description: 'The file', contentType: '*/*', schema: z.string() }, 404: err('No such analysis, or not finished') },
      async handler({ params }, _req, res) {
        const key = keys.analysisFile(params.id, params.file);
        const st = await ctx.storage.stat(key);
        if (!st) throw new NotFoundError(`analysis ${params.id} has no ${params.file} (not finished, or no such analysis)`);
        res.setHeader('Content-Type', RESULT_FILES[params.file]!);
        res.setHeader('Content-Length', String(st.size));
        res.setHeader('Cache-Control', 'no-cache');
        const stream = await ctx.storage.get(key);
        stream.on('error', (e) => res.destroy(e));
        stream.pipe(res);
        return undefined;
      },
    }),
  ];
}
