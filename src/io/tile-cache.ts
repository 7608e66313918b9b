import type { RgbImage } from '../readers/types.ts';

/**
 * Decoded tiles, least recently used first out, bounded in bytes (OpenSlide's
 * `openslide-cache.c`). Keys are strings built by the reader: `${slideKey}/${plane}/${tileIndex}`;
 * one cache may be shared by all open slides. Concurrent requests for the same tile share one
 * decode.
 */
export class TileCache {
  private readonly entries = new Map<string, RgbImage>();
  /** In-flight decodes; `store` turns true when any caller wants the result kept. */
  private readonly pending = new Map<string, { promise: Promise<RgbImage>; store: boolean }>();
  private bytes = 0;
  private hitCount = 0;
  private missCount = 0;

  /** @param maxBytes capacity in bytes of decoded pixels; 0 disables caching (in-flight sharing stays). */
  constructor(readonly maxBytes: number) {}

  /** Bytes of pixel data now held. */
  get size(): number { return this.bytes; }
  get stats(): { hits: number; misses: number; entries: number; bytes: number } {
    return { hits: this.hitCount, misses: this.missCount, entries: this.entries.size, bytes: this.bytes };
  }

  /** Whether `key` is cached, without marking it used. */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  get(key: string): RgbImage | undefined {
    const v = this.entries.get(key);
    if (v) {
      // re-insert to mark as most recently used (Map keeps insertion order)
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  set(key: string, value: RgbImage): void {
    const cost = value.data.length;
    const old = this.entries.get(key);
    if (old) { this.entries.delete(key); this.bytes -= old.data.length; }
    if (cost > this.maxBytes) return;
    this.entries.set(key, value);
    this.bytes += cost;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.data.length;
    }
  }

  /**
   * The cached tile, or the result of `load` (shared with concurrent callers). With `store` false
   * (a one-pass scan: the tile will not be asked for again) a newly decoded tile is returned but
   * not kept, so the scan neither holds cache memory nor evicts tiles others are using.
   */
  getOrLoad(key: string, load: () => Promise<RgbImage>, store = true): Promise<RgbImage> {
    const hit = this.get(key);
    if (hit) { this.hitCount++; return Promise.resolve(hit); }
    const inFlight = this.pending.get(key);
    if (inFlight) {
      this.hitCount++;
      inFlight.store ||= store;
      return inFlight.promise;
    }
    this.missCount++;
    const entry = { store, promise: null as unknown as Promise<RgbImage> };
    entry.promise = load().then(
      (v) => { this.pending.delete(key); if (entry.store) this.set(key, v); return v; },
      (err) => { this.pending.delete(key); throw err; },
    );
    this.pending.set(key, entry);
    return entry.promise;
  }

  /** Drops every entry whose key starts with `prefix` (a closed slide's tiles). */
  evictPrefix(prefix: string): void {
    for (const [k, v] of this.entries) {
      if (k.startsWith(prefix)) { this.entries.delete(k); this.bytes -= v.data.length; }
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}

/**
 * The process-wide cache every reader uses unless given another.
 * @defaultValue 64 MiB, or `LAMINA_TILE_CACHE_MB` from the environment.
 */
export const sharedTileCache = new TileCache(cacheBytesFromEnv());

function cacheBytesFromEnv(): number {
  const mb = Number(process.env.LAMINA_TILE_CACHE_MB);
  return Number.isFinite(mb) && mb >= 0 ? Math.floor(mb * 1024 * 1024) : 64 * 1024 * 1024;
}

let nextKey = 0;
/** A unique prefix for one opened slide's cache keys. */
export function newCacheKey(): string {
  return `s${++nextKey}`;
}
