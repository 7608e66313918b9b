import type { Request, Response } from 'express';
import { z } from 'zod';
import { errorSchema } from '../openapi.ts';
import { route, type RouteSpec } from '../route-table.ts';
import { dziGeometry, dziXml, parseTileName, renderSlideTile } from '../deep-zoom.ts';
import { renderHeatmapTile, renderLegend, ScoredTileIndex } from '../heatmap-tiles.ts';
import { UnavailableError } from '../http-errors.ts';
import type { ApiContext, CachedTile } from '../context.ts';
import { idParams } from './slides.ts';

const tileParams = z.object({
  id: idParams.shape.id,
  level: z.coerce.number().int().min(0).max(40),
  tile: z.string().max(40),
});
const image = (contentType: string, description: string) => ({ description, contentType, schema: z.string() });
const err = (description: string) => ({ description, schema: errorSchema });

/** Immutable content (slides are named by checksum) is cached for a year; live layers revalidate. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Sends a cached or freshly rendered tile with its ETag, answering 304 on a match. */
async function sendTile(ctx: ApiContext, req: Request, res: Response, key: string, etag: string, type: string, cacheControl: string, render: () => Promise<Buffer>): Promise<void> {
  res.setHeader('ETag', etag);
  res.setHeader('Cache-Control', cacheControl);
  if (req.headers['if-none-match'] === etag) {
    res.status(304).end();
    return;
  }
  let hit: CachedTile | undefined = ctx.tiles.get(key);
  if (!hit || hit.etag !== etag) {
    hit = { body: await render(), etag };
    ctx.tiles.set(key, hit, hit.body.length);
  }
  res.type(type).send(hit.body);
}

/** Per-analysis index of scored tiles, rebuilt only when the score version changes. */
const indexes = new Map<string, { version: string; index: ScoredTileIndex }>();

/** Deep Zoom layers: the slide itself (JPEG) and each analysis's heatmap (PNG, transparent). */
export function deepZoomRoutes(ctx: ApiContext): RouteSpec[] {
  const heatmapIndex = async (id: string) => {
    if (!ctx.analyses) throw new UnavailableError('the queue is not configured; no heatmaps');
    const a = await ctx.analyses.get(id);
    const slide = await ctx.records.slide(a.slideId);
    const snap = await ctx.analyses.scores(id);
    let entry = indexes.get(id);
    if (!entry || entry.version !== snap.version) {
      entry = { version: snap.version, index: new ScoredTileIndex(snap.tiles, slide.width, slide.height) };
      indexes.set(id, entry);
      if (indexes.size > 64) indexes.delete(indexes.keys().next().value!);
    }
    return { slide, snap, index: entry.index };
  };
  return [
    route({
      method: 'get', path: '/api/slides/:id/dzi', tag: 'deep zoom', params: idParams,
      summary: 'Deep Zoom descriptor of the slide (tiles under /api/slides/{id}/dzi_files/)',
      responses: { 200: image('application/xml', 'DZI XML'), 404: err('No such slide') },
      async handler({ params }, _req, res) {
        const s = await ctx.records.slide(params.id);
        res.setHeader('Cache-Control', IMMUTABLE);
        res.type('application/xml').send(dziXml(dziGeometry(s.width, s.height), 'jpeg'));
        return undefined;
      },
    }),
    route({
      method: 'get', path: '/api/slides/:id/dzi_files/:level/:tile', tag: 'deep zoom', params: tileParams,
      summary: 'One Deep Zoom tile of the slide, {col}_{row}.jpeg, rendered from the best pyramid level and cached',
      responses: { 200: image('image/jpeg', 'JPEG tile'), 304: { description: 'Not modified (ETag)' }, 404: err('No such slide or tile') },
      async handler({ params }, req, res) {
        const { col, row } = parseTileName(params.tile, 'jpeg');
        const s = await ctx.records.slide(params.id);
        const g = dziGeometry(s.width, s.height);
        const key = `slide/${s.id}/${params.level}/${col}_${row}`;
        await sendTile(ctx, req, res, key, `"${s.id}-${params.level}-${col}-${row}"`, 'image/jpeg', IMMUTABLE,
          async () => renderSlideTile(await ctx.handles.open(s.id), g, params.level, col, row));
        return undefined;
      },
    }),
    route({
      method: 'get', path: '/api/analyses/:id/heatmap/dzi', tag: 'deep zoom', params: idParams,
      summary: "Deep Zoom descriptor of an analysis's heatmap layer: the slide's geometry, PNG tiles",
      responses: { 200: image('application/xml', 'DZI XML'), 404: err('No such analysis') },
      async handler({ params }, _req, res) {
        const a = await ctx.analyses!.get(params.id);
        const s = await ctx.records.slide(a.slideId);
        res.setHeader('Cache-Control', IMMUTABLE);
        res.type('application/xml').send(dziXml(dziGeometry(s.width, s.height), 'png'));
        return undefined;
      },
    }),
    route({
      method: 'get', path: '/api/analyses/:id/heatmap/dzi_files/:level/:tile', tag: 'deep zoom', params: tileParams,
      query: z.object({ threshold: z.coerce.number().min(0).max(1).default(0) }),
      summary: 'One heatmap tile, {col}_{row}.png: scored tiles in the colour scale, transparent elsewhere and below ?threshold. Fills in while the analysis runs.',
      responses: { 200: image('image/png', 'PNG tile with alpha'), 304: { description: 'Not modified (ETag)' }, 404: err('No such analysis or tile') },
      async handler({ params, query }, req, res) {
        const { col, row } = parseTileName(params.tile, 'png');
        const { slide, snap, index } = await heatmapIndex(params.id);
        const g = dziGeometry(slide.width, slide.height);
        const t = Math.round(query.threshold * 1000) / 1000;
        const key = `heatmap/${params.id}/${params.level}/${col}_${row}/${t}`;
        await sendTile(ctx, req, res, key, `"${params.id}-${snap.version}-${params.level}-${col}-${row}-${t}"`, 'image/png',
          snap.final ? 'public, max-age=3600' : 'no-cache',
          () => renderHeatmapTile(index, g, params.level, col, row, t));
        return undefined;
      },
    }),
    route({
      method: 'get', path: '/api/legend.png', tag: 'deep zoom', summary: 'The heatmap colour scale, score 0 (left) to 1 (right)',
      responses: { 200: image('image/png', 'PNG strip') },
      async handler(_in, _req, res) {
        res.setHeader('Cache-Control', 'public, max-age=86400');
        res.type('image/png').send(await renderLegend());
        return undefined;
      },
    }),
  ];
}
