import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express } from 'express';
import { pino, type Logger } from 'pino';
import { Records } from '../storage/records.ts';
import type { Storage } from '../storage/storage.ts';
import type { AnalysisService, ApiConfig, ApiContext, CachedTile } from './context.ts';
import { LruCache } from './lru-cache.ts';
import { ApiMetrics } from './metrics.ts';
import { errorHandler, notFound } from './middleware.ts';
import { openApiDocument } from './openapi.ts';
import { mount, type RouteSpec } from './route-table.ts';
import { analysisRoutes } from './routes/analyses.ts';
import { batchRoutes } from './routes/batches.ts';
import { deepZoomRoutes } from './routes/deep-zoom.ts';
import { healthRoutes } from './routes/health.ts';
import { slideRoutes } from './routes/slides.ts';
import { SlideHandles } from './slide-service.ts';
import { viewerRouter } from '../viewer/static.ts';

export interface AppOptions {
  storage: Storage;
  analyses: AnalysisService | null;
  config: ApiConfig;
  log?: Logger;
  /** Bytes of rendered tiles kept in memory. @defaultValue 256 MiB */
  tileCacheBytes?: number;
  /** Mounts extra routers before the 404 handler (the BullMQ dashboard). */
  extra?: (app: Express) => void;
}

const here = dirname(fileURLToPath(import.meta.url));

/** The software version from package.json, for the OpenAPI document and results. */
export async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return JSON.parse(await readFile(join(here, '..', '..', 'package.json'), 'utf8')).version as string;
}

/**
 * The Express app: JSON API under /api, Deep Zoom layers, health and metrics, the viewer's static
 * pages at /. Routes are declared as specs (route-table.ts) so /api/openapi.json is built from them.
 */
export async function createApp(opts: AppOptions): Promise<{ app: Express; ctx: ApiContext; close(): void }> {
  const log = opts.log ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const records = new Records(opts.storage);
  const ctx: ApiContext = {
    records,
    storage: opts.storage,
    handles: new SlideHandles(records),
    tiles: new LruCache<string, CachedTile>(opts.tileCacheBytes ?? 256 * 1024 * 1024),
    analyses: opts.analyses,
    config: opts.config,
    log,
    version: await packageVersion(),
  };
  const specs: RouteSpec[] = [
    ...healthRoutes(ctx),
    ...slideRoutes(ctx),
    ...deepZoomRoutes(ctx),
    ...analysisRoutes(ctx),
    ...batchRoutes(ctx),
  ];
  const doc = openApiDocument(specs, ctx.version);
  const metrics = new ApiMetrics(opts.analyses);

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(metrics.observe);
  app.get('/api/openapi.json', (_req, res) => void res.json(doc));
  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  const router = express.Router();
  mount(router, specs, opts.config.token);
  app.use(router);
  opts.extra?.(app);
  app.use(viewerRouter());
  app.use(notFound);
  app.use(errorHandler(log));
  return { app, ctx, close: () => ctx.handles.closeAll() };
}
