import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../src/util/free-port.ts';

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.setTimeout(500);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.once('timeout', () => { s.destroy(); resolve(false); });
    s.connect(port, host);
  });
}

/**
 * A Redis for tests: REDIS_URL when set, else 127.0.0.1:6379 when it answers, else a
 * `redis-server` started here on a free port in a temporary folder (stopped by `stop`).
 */
export async function testRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => undefined };
  if (await reachable('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379', stop: async () => undefined };
  return startRedisServer();
}

/** Starts `redis-server` on a free port with its files in a temporary folder. */
export async function startRedisServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lamina-redis-'));
  const port = await freePort();
  let child: ChildProcess;
  try {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`redis-server could not be started (install it: apt-get install redis-server): ${(err as Error).message}`);
  }
  const failed = new Promise<never>((_r, reject) => child.once('error', (e) => reject(new Error(`redis-server could not be started (install it: apt-get install redis-server): ${e.message}`))));
  for (let i = 0; i < 100 && !(await Promise.race([reachable('127.0.0.1', port), failed])); i++) await new Promise((r) => setTimeout(r, 50));
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh key prefix per test, and a function that deletes every key under it. */
export function freshPrefix(url: string, prefix = `lamina-test-${randomUUID().slice(0, 8)}`): { prefix: string; cleanup(): Promise<void> } {
  return {
    prefix,
    async cleanup() {
      const r = new Redis(url);
      try {
        let cursor = '0';
        do {
          const [next, found] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          cursor = next;
          if (found.length) await r.del(...found);
        } while (cursor !== '0');
      } finally {
        r.disconnect();
      }
    },
  };
}
