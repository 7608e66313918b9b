import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { invalidParameter } from '../errors.ts';

/** @defaultValue redis://127.0.0.1:6379 */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Parsed REDIS_URL: what kind of deployment and how to reach it. */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'sentinel'; sentinels: { host: string; port: number }[]; name: string; password?: string; db: number; tls: boolean }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; password?: string; tls: boolean };

function hosts(list: string, defaultPort: number): { host: string; port: number }[] {
  return list.split(',').filter(Boolean).map((h) => {
    const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(h);
    if (!m) throw invalidParameter('REDIS_URL host', 'host[:port]', h);
    return { host: m[1]!, port: m[2] ? Number(m[2]) : defaultPort };
  });
}

/**
 * Reads REDIS_URL. Besides ioredis's own `redis://` and `rediss://` URLs it accepts
 * `redis-sentinel://[:password@]host1:26379,host2:26379/<masterName>[/<db>]` and
 * `redis-cluster://[:password@]host1:6379,host2:6379` (`+tls` after the scheme for TLS), since
 * ioredis supports both deployments but has no URL form for them.
 */
export function parseRedisUrl(url: string = process.env.REDIS_URL || DEFAULT_REDIS_URL): RedisTarget {
  const m = /^(redis-sentinel|redis-cluster)(\+tls)?:\/\/(?:([^@/]*)@)?([^/]+)(?:\/([^/]*))?(?:\/(\d+))?$/.exec(url);
  if (!m) {
    if (!/^rediss?:\/\//.test(url)) throw invalidParameter('REDIS_URL', 'redis://, rediss://, redis-sentinel:// or redis-cluster:// URL', url);
    return { kind: 'single', url };
  }
  const auth = m[3] ? decodeURIComponent(m[3]) : '';
  const password = auth.includes(':') ? auth.slice(auth.indexOf(':') + 1) : auth || undefined;
  const tls = Boolean(m[2]);
  if (m[1] === 'redis-cluster') return { kind: 'cluster', nodes: hosts(m[4]!, 6379), password, tls };
  if (!m[5]) throw invalidParameter('REDIS_URL', 'redis-sentinel://host:port[,host:port]/<masterName>', url);
  return { kind: 'sentinel', sentinels: hosts(m[4]!, 26379), name: decodeURIComponent(m[5]), password, db: m[6] ? Number(m[6]) : 0, tls };
}

/**
 * A new ioredis connection for REDIS_URL. `maxRetriesPerRequest: null` is what BullMQ workers
 * need (blocking commands must wait through reconnects rather than fail).
 */
export function connectRedis(url?: string, extra: RedisOptions = {}): Redis | Cluster {
  const target = parseRedisUrl(url);
  const base: RedisOptions = { maxRetriesPerRequest: null, ...extra };
  let client: Redis | Cluster;
  switch (target.kind) {
    case 'single':
      client = new Redis(target.url, base);
      break;
    case 'sentinel':
      client = new Redis({ ...base, sentinels: target.sentinels, name: target.name, password: target.password, sentinelPassword: target.password, db: target.db, ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}) });
      break;
    case 'cluster':
      client = new Cluster(target.nodes, { redisOptions: { ...base, password: target.password, ...(target.tls ? { tls: {} } : {}) } });
      break;
  }
  // ioredis reconnects by itself; failed commands carry the error to their callers and /readyz
  // reports it, so one warning per outage is enough (no unhandled 'error' event per retry).
  let warned = false;
  client.on('error', (err: Error) => {
    if (!warned) console.warn(`lamina: Redis ${target.kind === 'single' ? target.url.replace(/\/\/[^@]*@/, '//') : target.kind}: ${err.message} (retrying)`);
    warned = true;
  });
  client.on('ready', () => { warned = false; });
  return client;
}

export const isCluster = (url?: string): boolean => parseRedisUrl(url).kind === 'cluster';
