import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { pino, type Logger } from 'pino';
import { AnalysisQueue } from '../queue/analysis-queue.ts';
import { storageFromEnv, type FsStorage } from '../storage/fs-storage.ts';
import { createApp } from './app.ts';
import { apiConfigFromEnv, type ApiConfig } from './context.ts';
import { UnauthorizedError } from './http-errors.ts';
import { tokenMatches } from './route-table.ts';

export interface ServerOptions {
  port: number;
  host?: string;
  storage?: FsStorage;
  redisUrl?: string;
  prefix?: string;
  config?: ApiConfig;
  log?: Logger;
}

/** A running API: its URL, the queue it submits to, and a close that ends both. */
export interface RunningServer {
  url: string;
  queue: AnalysisQueue;
  server: Server;
  close(): Promise<void>;
}

/**
 * Starts the API, the viewer and the BullMQ dashboard (/admin/queues, behind the token when one is set)
 * on one port. Used by `lamina serve`, the demo and the tests.
 */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const storage = opts.storage ?? storageFromEnv();
  const config = opts.config ?? apiConfigFromEnv();
  const log = opts.log ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const queue = new AnalysisQueue({ storage, redisUrl: opts.redisUrl ?? (process.env.REDIS_URL || undefined), prefix: opts.prefix });
  await storage.sweepStaging();
  const { app, close } = await createApp({
    storage, analyses: queue, config, log,
    extra(app) {
      const board = new ExpressAdapter();
      board.setBasePath('/admin/queues');
      createBullBoard({ queues: Object.values(queue.queues).map((q) => new BullMQAdapter(q)), serverAdapter: board as never }); // @bull-board/express pins its own copy of @bull-board/api's types
      if (config.token) {
        const token = config.token;
        app.use('/admin/queues', (req, _res, next) => next(tokenMatches(req.headers.authorization, token) ? undefined : new UnauthorizedError()));
      }
      app.use('/admin/queues', board.getRouter());
    },
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve(s));
    s.once('error', reject);
  });
  // Uploads of many gigabytes take long: no overall request timeout, but idle sockets still close.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  const addr = server.address() as AddressInfo;
  const host = opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1';
  return {
    url: `http://${host}:${addr.port}`,
    queue,
    server,
    async close() {
      close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await queue.close();
    },
  };
}
