import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startServer, type RunningServer } from '../../src/api/server.ts';
import { FsStorage } from '../../src/storage/fs-storage.ts';
import { SLIDES } from '../api/harness.ts';
import { freshPrefix, testRedis } from './redis-harness.ts';

/** Parameters of the test analyses: the tiny built-in encoder, small batches (tens of tiles in all). */
export const TEST_PARAMS = { model: 'untrained-test-tiny', batchSize: 4 };

/** A whole service for a test: Redis, a fresh prefix and data folder, the API on port 0. */
export async function startService(config: { token?: string } = {}) {
  const redis = await testRedis();
  const { prefix, cleanup } = freshPrefix(redis.url);
  const dataDir = await mkdtemp(join(tmpdir(), 'lamina-svc-'));
  const storage = new FsStorage(dataDir);
  const api: RunningServer = await startServer({
    port: 0, host: '127.0.0.1', storage, redisUrl: redis.url, prefix,
    config: { maxUploadBytes: 64 * 1024 * 1024, uploadsPerMinute: 0, token: config.token }, log: pino({ level: 'silent' }),
  });
  await api.queue.ready();
  const workers: ChildProcess[] = [];
  const auth: Record<string, string> = config.token ? { authorization: `Bearer ${config.token}` } : {};
  return {
    api, redis, prefix, dataDir, storage,
    /** Starts `lamina worker` as its own process group (so kill -9 takes its sandbox children too). */
    startWorker(extra: string[] = []): ChildProcess {
      const child = spawn(process.execPath, ['bin/lamina.js', 'worker', '--lock-duration', '2000', '--stalled-interval', '1000', ...extra], {
        env: { ...process.env, REDIS_URL: redis.url, LAMINA_QUEUE_PREFIX: prefix, LAMINA_DATA_DIR: dataDir },
        stdio: ['ignore', 'pipe', 'pipe'], detached: true,
      });
      let out = '';
      child.stdout!.on('data', (d) => { out += d; });
      child.stderr!.on('data', (d) => { out += d; });
      Object.defineProperty(child, 'output', { get: () => out });
      workers.push(child);
      return child;
    },
    async upload(name = 'CMU-1-Small-Region.svs'): Promise<{ id: string }> {
      const body = await readFile(join(SLIDES, name));
      const r = await fetch(`${api.url}/api/slides?filename=${name}`, { method: 'POST', body, headers: auth });
      if (r.status >= 300) throw new Error(`upload: ${r.status} ${await r.text()}`);
      return (await r.json()).slide;
    },
    async submit(slideId: string, params: object = TEST_PARAMS) {
      const r = await fetch(`${api.url}/api/slides/${slideId}/analyses`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(params) });
      if (r.status !== 202) throw new Error(`submit: ${r.status} ${await r.text()}`);
      return r.json();
    },
    async get(id: string) {
      return (await fetch(`${api.url}/api/analyses/${id}`)).json();
    },
    /** Polls until `until` holds for the analysis (default: a terminal state). */
    async waitFor(id: string, until: (a: any) => boolean = (a) => ['completed', 'failed', 'cancelled'].includes(a.state), timeoutMs = 120_000, everyMs = 200) {
      const t0 = Date.now();
      for (;;) {
        const a = await (await fetch(`${api.url}/api/analyses/${id}`)).json();
        if (until(a)) return a;
        if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting on analysis ${id}: ${JSON.stringify(a)}`);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    },
    async stop() {
      for (const w of workers) {
        if (w.exitCode === null && w.signalCode === null) {
          try { process.kill(-w.pid!, 'SIGKILL'); } catch { /* already gone */ }
          await new Promise((r) => w.once('exit', r));
        }
      }
      await api.close();
      await cleanup();
      await redis.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
