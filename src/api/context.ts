import type { Logger } from 'pino';
import type { AnalysisRecord, Records } from '../storage/records.ts';
import type { Storage } from '../storage/storage.ts';
import type { ScoredTile } from './heatmap-tiles.ts';
import type { LruCache } from './lru-cache.ts';
import type { SlideHandles } from './slide-service.ts';

/** Live progress of an analysis (from Redis), beside its stored record. */
export interface AnalysisProgress {
  batchesDone: number;
  batchesTotal: number;
  tilesDone: number;
  tilesTotal: number;
  /** 0..1 */
  fraction: number;
}

export interface AnalysisView extends AnalysisRecord {
  progress: AnalysisProgress;
}

/** Scores known so far for the heatmap layer; `version` changes whenever more arrive. */
export interface ScoreSnapshot {
  tiles: ScoredTile[];
  version: string;
  final: boolean;
}

/**
 * What the HTTP layer needs from the queue (implemented by src/queue/analysis-queue.ts); kept as
 * an interface so the API's upload and Deep Zoom routes run, and are tested, without Redis.
 */
export interface AnalysisService {
  /** Validates parameters and queues an analysis; an existing one with the same slide and parameters is returned, not redone. */
  submit(slideId: string, params: unknown): Promise<{ analysis: AnalysisView; created: boolean }>;
  get(id: string): Promise<AnalysisView>;
  list(slideId?: string): Promise<AnalysisView[]>;
  cancel(id: string): Promise<AnalysisView>;
  scores(id: string): Promise<ScoreSnapshot>;
  /** Calls `listener` whenever the analysis may have changed; returns the unsubscribe function. */
  watch(id: string, listener: () => void): () => void;
  /** Removes an analysis and its results (cancelling it first). */
  remove(id: string): Promise<void>;
  ping(): Promise<void>;
  /** Job counts per queue and state, for /metrics. */
  jobCounts(): Promise<Record<string, Record<string, number>>>;
  /** Total tiles scored by all workers (a counter kept in Redis). */
  tilesScored(): Promise<number>;
}

/** Limits and switches of the HTTP API, from the environment. */
export interface ApiConfig {
  /** Bearer token required on write endpoints; unset = open. (LAMINA_API_TOKEN) */
  token?: string;
  /** @defaultValue 20 GiB (LAMINA_MAX_UPLOAD_BYTES) */
  maxUploadBytes: number;
  /** Uploads per minute per client address; 0 = no limit. @defaultValue 60 (LAMINA_UPLOADS_PER_MINUTE) */
  uploadsPerMinute: number;
}

export function apiConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const num = (v: string | undefined, d: number) => (v && Number.isFinite(Number(v)) ? Number(v) : d);
  return {
    token: env.LAMINA_API_TOKEN || undefined,
    maxUploadBytes: num(env.LAMINA_MAX_UPLOAD_BYTES, 20 * 1024 ** 3),
    uploadsPerMinute: num(env.LAMINA_UPLOADS_PER_MINUTE, 60),
  };
}

/** A cached rendered tile. */
export interface CachedTile {
  body: Buffer;
  etag: string;
}

/** Everything a route handler may use. */
export interface ApiContext {
  records: Records;
  storage: Storage;
  handles: SlideHandles;
  /** Rendered Deep Zoom tiles (slide and heatmap), bounded by bytes. */
  tiles: LruCache<string, CachedTile>;
  analyses: AnalysisService | null;
  config: ApiConfig;
  log: Logger;
  version: string;
}
