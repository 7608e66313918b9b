import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { NotFoundError, invalidParameter } from '../errors.ts';
import type { Storage, StoredObject } from './storage.ts';

/** Keys are relative paths of safe segments; this is the only gate between a key and the disk. */
const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/** Throws unless `key` is slash-separated safe segments (no `..`, no absolute paths). */
export function checkKey(key: string): string[] {
  const parts = key.split('/');
  if (!key || parts.some((p) => !SEGMENT.test(p) || p.includes('..'))) throw invalidParameter('storage key', 'relative path of [A-Za-z0-9._-] segments', key);
  return parts;
}

/**
 * Storage on a local or shared filesystem (NFS, a Docker volume) rooted at `root`. Writes go to
 * `<root>/.tmp/<random>` and are renamed into place: rename is atomic on POSIX filesystems, so
 * concurrent readers on other machines never see a half-written file. The staging folder is inside
 * the root so the rename never crosses filesystems.
 */
export class FsStorage implements Storage {
  readonly root: string;
  private readonly tmpDir: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.tmpDir = join(this.root, '.tmp');
  }

  private path(key: string): string {
    return join(this.root, ...checkKey(key));
  }

  async stagingPath(): Promise<string> {
    await mkdir(this.tmpDir, { recursive: true });
    return join(this.tmpDir, `${Date.now()}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  async commit(staged: string, key: string): Promise<void> {
    if (dirname(resolve(staged)) !== this.tmpDir) throw invalidParameter('staged path', `a path from stagingPath() under ${this.tmpDir}`, staged);
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    await rename(staged, target);
  }

  async put(key: string, body: Buffer | string | Readable): Promise<number> {
    const staged = await this.stagingPath();
    try {
      if (typeof body === 'string' || Buffer.isBuffer(body)) {
        await writeFile(staged, body);
      } else {
        await pipeline(body, createWriteStream(staged));
      }
      const size = (await stat(staged)).size;
      await this.commit(staged, key);
      return size;
    } catch (err) {
      await rm(staged, { force: true });
      throw err;
    }
  }

  async putIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    const staged = await this.stagingPath();
    const target = this.path(key);
    await writeFile(staged, body);
    await mkdir(dirname(target), { recursive: true });
    try {
      // link(2) fails with EEXIST when the target exists: an atomic create even over NFS.
      await link(staged, target);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await unlink(staged).catch(() => undefined);
    }
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const path = this.path(key);
    if (!(await this.stat(key))) throw new NotFoundError(`${key} not found`);
    return createReadStream(path, range);
  }

  async read(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${key} not found`, { cause: err });
      throw err;
    }
  }

  async stat(key: string): Promise<StoredObject | null> {
    try {
      const s = await stat(this.path(key));
      return { key, size: s.size, modifiedMs: s.mtimeMs };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<string[]> {
    try {
      const names = await readdir(this.path(prefix));
      return names.filter((n) => !n.startsWith('.')).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.path(key);
    // Move aside first so a concurrent reader sees the whole object or nothing, then remove.
    const staged = await this.stagingPath();
    try {
      await rename(path, staged);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    await rm(staged, { recursive: true, force: true });
  }

  async localPath(key: string): Promise<string> {
    const path = this.path(key);
    if (!(await this.stat(key))) throw new NotFoundError(`${key} not found`);
    return path;
  }

  /** Removes staged files older than `maxAgeMs` (uploads cut off by a crash). */
  async sweepStaging(maxAgeMs = 24 * 3600_000): Promise<number> {
    let removed = 0;
    const names = await readdir(this.tmpDir).catch(() => [] as string[]);
    for (const n of names) {
      const p = this.tmpDir + sep + n;
      const s = await stat(p).catch(() => null);
      if (s && Date.now() - s.mtimeMs > maxAgeMs) {
        await rm(p, { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }
}

/**
 * The storage every process uses: a filesystem rooted at `LAMINA_DATA_DIR` (default `./data`).
 * @defaultValue `./data`
 */
export function storageFromEnv(env: NodeJS.ProcessEnv = process.env): FsStorage {
  return new FsStorage(env.LAMINA_DATA_DIR || './data');
}
