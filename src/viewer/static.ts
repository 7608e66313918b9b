import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Router } from 'express';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The viewer's static pages at / and OpenSeadragon at /vendor/openseadragon/ straight from
 * node_modules (no CDN: hospital networks are often offline).
 */
export function viewerRouter(): Router {
  const router = express.Router();
  const osd = join(dirname(createRequire(import.meta.url).resolve('openseadragon/package.json')), 'build', 'openseadragon');
  router.use('/vendor/openseadragon', express.static(osd, { maxAge: '1d', fallthrough: false }));
  router.get('/slides/:id', (_req, res) => res.sendFile(join(here, 'public', 'slide.html')));
  router.use(express.static(join(here, 'public'), { maxAge: 0, index: 'index.html' }));
  return router;
}
