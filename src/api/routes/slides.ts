import { z } from 'zod';
import { UnavailableError } from '../http-errors.ts';
import { errorSchema } from '../openapi.ts';
import { rateLimit } from '../middleware.ts';
import { route, type RouteSpec } from '../route-table.ts';
import { registerUpload } from '../slide-service.ts';
import { receiveUpload } from '../upload.ts';
import type { ApiContext } from '../context.ts';
import { keys } from '../../storage/records.ts';

export const idParams = z.object({ id: z.string().regex(/^[a-z0-9]{6,64}$/, 'not an id') });

export const slideSchema = z.object({
  id: z.string(), name: z.string(), size: z.number(), sha256: z.string(), format: z.string(), vendor: z.string(),
  width: z.number(), height: z.number(),
  levels: z.array(z.object({ width: z.number(), height: z.number(), downsample: z.number() })),
  mpp: z.object({ x: z.number(), y: z.number() }).nullable(), objectivePower: z.number().nullable(), createdAt: z.string(),
  analyses: z.array(z.object({ id: z.string(), state: z.string(), score: z.number().nullable().optional(), fraction: z.number() })).optional(),
});

const err = (description: string) => ({ description, schema: errorSchema });

/** Upload, list, inspect and delete slides. */
export function slideRoutes(ctx: ApiContext): RouteSpec[] {
  const withAnalyses = async (id: string) => {
    const slide = await ctx.records.slide(id);
    const { fileKey: _f, ...pub } = slide;
    const list = ctx.analyses ? await ctx.analyses.list(id).catch(() => []) : [];
    return { ...pub, analyses: list.map((a) => ({ id: a.id, state: a.state, score: a.score ?? null, fraction: a.progress.fraction })) };
  };
  return [
    route({
      method: 'post', path: '/api/slides', tag: 'slides', write: true,
      summary: 'Upload a slide: a raw body with ?filename=, or multipart/form-data with the field `file`. Streamed to disk, hashed, format-checked, de-duplicated.',
      query: z.object({ filename: z.string().optional() }),
      streamBody: {
        'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
        'multipart/form-data': { schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' } }, required: ['file'] } },
      },
      before: [rateLimit(ctx.config.uploadsPerMinute)],
      responses: {
        201: { description: 'Stored', schema: z.object({ slide: slideSchema, duplicate: z.boolean() }) },
        200: { description: 'The same file was already stored (same SHA-256)', schema: z.object({ slide: slideSchema, duplicate: z.boolean() }) },
        400: err('Bad file name (path separators, ..) or multipart without `file`'),
        401: err('Missing or wrong bearer token'),
        413: err('Larger than LAMINA_MAX_UPLOAD_BYTES'),
        415: err('Not a slide format Lamina reads'),
        422: err('A slide whose structure or pixel data is broken (e.g. truncated)'),
        429: err('Too many uploads'),
      },
      async handler({ query }, req, res) {
        const staged = await ctx.storage.stagingPath();
        const file = await receiveUpload(req, query, staged, ctx.config.maxUploadBytes);
        const { slide, duplicate } = await registerUpload(ctx.records, file);
        res.status(duplicate ? 200 : 201).json({ slide: await withAnalyses(slide.id), duplicate });
        return undefined;
      },
    }),
    route({
      method: 'get', path: '/api/slides', tag: 'slides', summary: 'All slides with their analyses',
      responses: { 200: { description: 'Slides, oldest first', schema: z.object({ slides: z.array(slideSchema) }) } },
      async handler() {
        const slides = await ctx.records.listSlides();
        return { slides: await Promise.all(slides.map((s) => withAnalyses(s.id))) };
      },
    }),
    route({
      method: 'get', path: '/api/slides/:id', tag: 'slides', summary: 'One slide with its analyses', params: idParams,
      responses: { 200: { description: 'The slide', schema: slideSchema }, 404: err('No such slide') },
      handler: ({ params }) => withAnalyses(params.id),
    }),
    route({
      method: 'delete', path: '/api/slides/:id', tag: 'slides', write: true, params: idParams,
      summary: 'Delete a slide, cancelling and deleting its analyses',
      responses: { 204: { description: 'Deleted' }, 404: err('No such slide'), 401: err('Missing or wrong bearer token') },
      async handler({ params }, _req, res) {
        const slide = await ctx.records.slide(params.id);
        if (ctx.analyses) {
          for (const a of await ctx.analyses.list(slide.id)) await ctx.analyses.remove(a.id);
        } else if ((await ctx.records.listAnalyses(slide.id)).length > 0) {
          throw new UnavailableError('cannot delete a slide with analyses while the queue is unavailable');
        }
        ctx.handles.forget(slide.id);
        ctx.tiles.deleteWhere((k) => k.startsWith(`slide/${slide.id}/`));
        await ctx.storage.delete(keys.slideDir(slide.id));
        res.status(204).end();
        return undefined;
      },
    }),
  ];
}
