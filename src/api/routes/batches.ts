import { createHash } from 'node:crypto';
import { z } from 'zod';
import { LaminaError } from '../../errors.ts';
import type { BatchRecord } from '../../storage/records.ts';
import { errorSchema } from '../openapi.ts';
import { route, type RouteSpec } from '../route-table.ts';
import type { ApiContext } from '../context.ts';
import { requireQueue } from './analyses.ts';
import { idParams } from './slides.ts';
import { analysisParamsSchema } from '../../../pipelines/anomaly.ts';

const batchBody = z.object({
  slides: z.array(idParams.shape.id).min(1).max(10_000),
  params: analysisParamsSchema.partial().default({}),
});

const summarySchema = z.object({
  id: z.string(), createdAt: z.string(),
  counts: z.record(z.string(), z.number()),
  fraction: z.number(),
  done: z.boolean(),
  items: z.array(z.object({ slideId: z.string(), name: z.string().optional(), analysisId: z.string().nullable(), state: z.string(), score: z.number().nullable(), reason: z.string().nullable(), fraction: z.number() })),
});
const err = (description: string) => ({ description, schema: errorSchema });

/**
 * Queues each slide of a batch; one that cannot be queued (unknown slide, bad parameters for it)
 * keeps its reason and the rest go on. Re-submitting is how a batch resumes: analyses are named by
 * slide checksum and parameters, so finished ones are returned as they are.
 */
async function submitAll(ctx: ApiContext, record: BatchRecord): Promise<void> {
  const q = requireQueue(ctx);
  for (const item of record.items) {
    try {
      const slide = await ctx.records.slide(item.slideId);
      item.name = slide.name;
      item.analysisId = (await q.submit(item.slideId, record.params)).analysis.id;
      delete item.reason;
    } catch (e) {
      if (!(e instanceof LaminaError) || e.status >= 500) throw e;
      item.reason = e.message;
    }
  }
  await ctx.records.saveBatch(record);
}

async function summarise(ctx: ApiContext, record: BatchRecord) {
  const q = requireQueue(ctx);
  const items = await Promise.all(record.items.map(async (it) => {
    const a = it.analysisId ? await q.get(it.analysisId).catch(() => null) : null;
    return {
      slideId: it.slideId, name: it.name, analysisId: it.analysisId,
      state: a?.state ?? 'failed', score: a?.score ?? null,
      reason: a?.reason ?? it.reason ?? (a ? null : 'analysis not found'),
      fraction: a?.progress.fraction ?? 0,
    };
  }));
  const counts: Record<string, number> = {};
  for (const it of items) counts[it.state] = (counts[it.state] ?? 0) + 1;
  const done = items.every((it) => ['completed', 'failed', 'cancelled'].includes(it.state));
  const fraction = items.reduce((s, it) => s + (['completed', 'failed', 'cancelled'].includes(it.state) ? 1 : it.fraction), 0) / items.length;
  return { id: record.id, createdAt: record.createdAt, counts, fraction, done, items };
}

/** Many slides at once: queue, follow, resume. */
export function batchRoutes(ctx: ApiContext): RouteSpec[] {
  return [
    route({
      method: 'post', path: '/api/batches', tag: 'batches', write: true, body: batchBody,
      summary: 'Queue many uploaded slides with one parameter set; the same slides and parameters give the same batch id (so this also resumes)',
      responses: { 202: { description: 'Queued; summary table', schema: summarySchema }, 400: err('Invalid body'), 401: err('Missing or wrong bearer token') },
      async handler({ body }, _req, res) {
        const params = body.params as Record<string, unknown>;
        const slides = [...new Set(body.slides)];
        const id = createHash('sha256').update(JSON.stringify([slides, params])).digest('hex').slice(0, 20);
        const existing = await ctx.records.batch(id).catch(() => null);
        const record: BatchRecord = existing ?? { id, createdAt: new Date().toISOString(), params, items: slides.map((slideId) => ({ slideId, analysisId: null })) };
        await submitAll(ctx, record);
        res.status(202).setHeader('Location', `/api/batches/${id}`).json(await summarise(ctx, record));
        return undefined;
      },
    }),
    route({
      method: 'get', path: '/api/batches', tag: 'batches', summary: 'All batches with their summaries',
      responses: { 200: { description: 'Batches', schema: z.object({ batches: z.array(summarySchema) }) } },
      async handler() {
        const ids = (await ctx.storage.list('batches')).map((n) => n.replace(/\.json$/, ''));
        const records = await Promise.all(ids.map((id) => ctx.records.batch(id).catch(() => null)));
        return { batches: await Promise.all(records.filter((r): r is BatchRecord => r !== null).map((r) => summarise(ctx, r))) };
      },
    }),
    route({
      method: 'get', path: '/api/batches/:id', tag: 'batches', params: idParams, summary: 'Progress and summary table (slide, state, score, reason)',
      responses: { 200: { description: 'Summary', schema: summarySchema }, 404: err('No such batch') },
      handler: async ({ params }) => summarise(ctx, await ctx.records.batch(params.id)),
    }),
    route({
      method: 'post', path: '/api/batches/:id/resume', tag: 'batches', write: true, params: idParams,
      summary: 'Queue again the slides of a batch that failed or were cancelled; finished ones are kept',
      responses: { 202: { description: 'Summary', schema: summarySchema }, 404: err('No such batch'), 401: err('Missing or wrong bearer token') },
      async handler({ params }, _req, res) {
        const record = await ctx.records.batch(params.id);
        await submitAll(ctx, record);
        res.status(202).json(await summarise(ctx, record));
        return undefined;
      },
    }),
  ];
}
