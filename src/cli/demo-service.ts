import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { startServer } from '../api/server.ts';
import { apiConfigFromEnv } from '../api/context.ts';
import { UnavailableError } from '../api/http-errors.ts';
import { parseRedisUrl } from '../queue/connection.ts';
import { startWorkers } from '../queue/worker-runner.ts';
import { storageFromEnv } from '../storage/fs-storage.ts';
import { modelLine } from './embedder-run.ts';
import { freePort } from '../util/free-port.ts';

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

/**
 * A Redis for the demo: REDIS_URL when set, else a `redis-server` started on a free port with a
 * temporary folder (removed on stop).
 * @throws UnavailableError saying how to install Redis when there is none
 */
export async function demoRedis(log: (m: string) => void): Promise<{ url: string; stop(): Promise<void> }> {
  if (process.env.REDIS_URL) {
    parseRedisUrl(process.env.REDIS_URL);
    return { url: process.env.REDIS_URL, stop: async () => undefined };
  }
  const dir = await mkdtemp(join(tmpdir(), 'lamina-demo-redis-'));
  const port = await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const missing = await new Promise<Error | null>((resolve) => {
    child.once('error', resolve);
    const poll = async () => {
      for (let i = 0; i < 100; i++) {
        if (await answers(port)) return resolve(null);
        await new Promise((r) => setTimeout(r, 50));
      }
      resolve(new Error('redis-server did not answer within 5 s'));
    };
    void poll();
  });
  if (missing) {
    await rm(dir, { recursive: true, force: true });
    throw new UnavailableError(`no Redis: set REDIS_URL, or install redis-server (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) (${missing.message})`);
  }
  log(`demo: started redis-server on port ${port} (temporary, data in ${dir})`);
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ServiceDemoOptions {
  slide: string;
  port: number;
  params: Record<string, unknown>;
  exitWhenDone: boolean;
  signal: AbortSignal;
}

/**
 * The service demo: Redis (given or started), the API and a worker in this process, the sample
 * slide uploaded over HTTP and analysed through the queue, the viewer's URL printed; then it keeps
 * serving until Ctrl-C (or stops after the analysis with `exitWhenDone`).
 * @returns the exit code: 0 when the analysis completed
 */
export async function runServiceDemo(opts: ServiceDemoOptions): Promise<number> {
  const say = (m: string) => console.log(m);
  const redis = await demoRedis(say);
  const storage = storageFromEnv();
  const config = apiConfigFromEnv();
  const server = await startServer({ port: opts.port, host: process.env.HOST ?? '127.0.0.1', storage, redisUrl: redis.url, config, log: pino({ level: process.env.LOG_LEVEL ?? 'warn' }) });
  const workers = await startWorkers({ storage, redisUrl: redis.url, log: { info: () => undefined, warn: (m) => console.warn(m) } });
  const auth: Record<string, string> = config.token ? { authorization: `Bearer ${config.token}` } : {};
  try {
    say(`demo: API and viewer at ${server.url} (data in ${storage.root}); worker started`);
    const size = (await stat(opts.slide)).size;
    const up = await fetch(`${server.url}/api/slides?filename=${encodeURIComponent(basename(opts.slide))}`, {
      method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(size), ...auth },
      body: Readable.toWeb(createReadStream(opts.slide)) as ReadableStream, duplex: 'half',
    } as RequestInit);
    const upBody = await up.json();
    if (!up.ok) throw new Error(`upload of ${opts.slide} failed: ${upBody.error?.message}`);
    const slideId = upBody.slide.id as string;
    const r = await fetch(`${server.url}/api/slides/${slideId}/analyses`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify(opts.params) });
    const analysis = await r.json();
    if (!r.ok) throw new Error(`analysis request failed: ${analysis.error?.message}`);
    say(`demo: uploaded ${basename(opts.slide)} as slide ${slideId}; analysis ${analysis.id} ${analysis.state} (encoder ${analysis.params.model})`);
    say(`\n  Viewer: ${server.url}/slides/${slideId}?analysis=${analysis.id}\n  Slides: ${server.url}/\n`);
    let state = analysis.state as string;
    let last = '';
    while (!['completed', 'failed', 'cancelled'].includes(state) && !opts.signal.aborted) {
      await new Promise((res) => setTimeout(res, 1000));
      const a = await (await fetch(`${server.url}/api/analyses/${analysis.id}`)).json();
      state = a.state;
      const line = `demo: ${a.state} ${a.progress.tilesDone}/${a.progress.tilesTotal || '?'} tiles`;
      if (line !== last) say(line);
      last = line;
      if (a.state === 'failed') say(`demo: failed: ${a.reason}`);
      if (a.state === 'completed') {
        const result = await (await fetch(`${server.url}/api/analyses/${analysis.id}/result.json`, { headers: auth })).json();
        say(`demo: slide score ${a.score}; result at ${server.url}/api/analyses/${analysis.id}/result.json`);
        say(`demo: ${modelLine(result.model)}`);
      }
    }
    if (!opts.exitWhenDone && !opts.signal.aborted) {
      say(`demo: serving ${server.url} — press Ctrl-C to stop`);
      await new Promise<void>((res) => opts.signal.addEventListener('abort', () => res(), { once: true }));
    }
    return state === 'completed' ? 0 : 1;
  } finally {
    await workers.close();
    await server.close();
    await redis.stop();
  }
}
