import type { Readable } from 'node:stream';

/** Size and modification time of a stored object. */
export interface StoredObject {
  key: string;
  size: number;
  modifiedMs: number;
}

/**
 * Where slides and results live, shared by the API and every worker (on any machine). Keys are
 * slash-separated relative paths (`slides/<id>/slide.svs`, `analyses/<id>/result.json`); every
 * write is atomic (readers see the old object or the new one, never a torn file), so a retried
 * job that writes the same key again is harmless. A filesystem on a shared volume implements it
 * today; an object store can follow behind the same surface.
 */
export interface Storage {
  /** Writes a whole object from bytes or a stream, atomically. Returns the bytes written. */
  put(key: string, body: Buffer | string | Readable): Promise<number>;
  /** Writes only when the key is absent (atomic create); returns false when it already existed. */
  putIfAbsent(key: string, body: Buffer | string): Promise<boolean>;
  /** A read stream over an object (optionally a byte range, end inclusive); NotFoundError when absent. */
  get(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** The whole object; NotFoundError when absent. */
  read(key: string): Promise<Buffer>;
  /** null when absent. */
  stat(key: string): Promise<StoredObject | null>;
  /** Keys directly under a prefix folder (names only, no recursion), sorted. */
  list(prefix: string): Promise<string[]>;
  /** Removes an object or a whole prefix folder; absent keys are fine. */
  delete(key: string): Promise<void>;
  /**
   * A local file path for an object, for readers that need random access. For the filesystem this
   * is the stored file itself; an object store would fetch to a local cache first.
   */
  localPath(key: string): Promise<string>;
  /**
   * A fresh local path for staging a large upload before `commit` moves it to a key; used so an
   * upload is streamed to disk exactly once (no second copy for multi-gigabyte slides).
   */
  stagingPath(): Promise<string>;
  /** Moves a staged file to a key atomically (rename on the same filesystem). */
  commit(staged: string, key: string): Promise<void>;
}

/** JSON helpers over any Storage. */
export async function readJson<T>(storage: Storage, key: string): Promise<T> {
  return JSON.parse((await storage.read(key)).toString('utf8')) as T;
}

/** Reads JSON, or returns null when the key is absent. */
export async function readJsonIfExists<T>(storage: Storage, key: string): Promise<T | null> {
  if (!(await storage.stat(key))) return null;
  try {
    return await readJson<T>(storage, key);
  } catch (err) {
    if ((err as { status?: number }).status === 404) return null;
    throw err;
  }
}

export async function writeJson(storage: Storage, key: string, value: unknown): Promise<void> {
  await storage.put(key, JSON.stringify(value, null, 2) + '\n');
}
