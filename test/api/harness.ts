import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { pino } from 'pino';
import { createApp } from '../../src/api/app.ts';
import type { AnalysisService, ApiConfig } from '../../src/api/context.ts';
import { FsStorage } from '../../src/storage/fs-storage.ts';

/** The shared real slides, resolved from this file (never copied into the repository). */
export const SLIDES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'slides');

/** An API on port 0 over a fresh temporary data directory. */
export async function startApi(opts: { analyses?: AnalysisService | null; config?: Partial<ApiConfig>; dataDir?: string } = {}) {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'lamina-api-')));
  const storage = new FsStorage(dataDir);
  const { app, close } = await createApp({
    storage,
    analyses: opts.analyses ?? null,
    config: { maxUploadBytes: 64 * 1024 * 1024, uploadsPerMinute: 0, ...opts.config },
    log: pino({ level: 'silent' }),
  });
  const server: Server = await new Promise((resolve) => { const s = app.listen(0, '127.0.0.1', () => resolve(s)); });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base, storage, dataDir,
    async stop(removeData = !opts.dataDir) {
      close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      if (removeData) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
