import { rm } from 'node:fs/promises';
import { extname } from 'node:path';
import { CorruptSlideError, LaminaError } from '../errors.ts';
import { openSlide } from '../readers/registry.ts';
import type { Slide } from '../readers/types.ts';
import { keys, type Records, type SlideRecord } from '../storage/records.ts';
import { LruCache } from './lru-cache.ts';
import type { ReceivedFile } from './upload.ts';

/** Slide ids are the first 24 hex digits of the file's SHA-256, so the same file is the same slide. */
export const slideIdFor = (sha256: string): string => sha256.slice(0, 24);

/**
 * Opens a file with the readers and proves its pixel data is there: the far corner of level 0 and
 * the whole smallest level are read, which catches a truncated file whose header is intact.
 * @throws UnsupportedSlideError (415) or CorruptSlideError (422) with the reader's reason
 */
export async function checkSlideFile(path: string, name: string): Promise<Slide> {
  let slide: Slide | null = null;
  try {
    slide = await openSlide(path);
    const { width, height } = slide.dimensions;
    const w = Math.min(64, width), h = Math.min(64, height);
    await slide.readRegion(width - w, height - h, 0, w, h);
    const last = slide.levels.length - 1;
    const small = slide.levels[last]!;
    if (small.width * small.height <= 4096 * 4096) await slide.readRegion(0, 0, last, small.width, small.height);
    return slide;
  } catch (err) {
    await slide?.close().catch(() => undefined);
    if (err instanceof LaminaError) throw err;
    throw new CorruptSlideError(`${name}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Turns a received upload into a stored slide: format check (nothing is kept when it fails),
 * de-duplication by checksum, then an atomic move into `slides/<id>/`.
 * @returns the record and whether the same file was already stored
 */
export async function registerUpload(records: Records, file: ReceivedFile): Promise<{ slide: SlideRecord; duplicate: boolean }> {
  const id = slideIdFor(file.sha256);
  try {
    const existing = await records.findSlide(id);
    if (existing) return { slide: existing, duplicate: true };
    const slide = await checkSlideFile(file.path, file.filename);
    const ext = /^\.[a-z0-9]{1,8}$/.test(extname(file.filename).toLowerCase()) ? extname(file.filename).toLowerCase() : '';
    const record: SlideRecord = {
      id,
      name: file.filename,
      fileKey: keys.slideFile(id, ext),
      size: file.size,
      sha256: file.sha256,
      format: slide.format,
      vendor: slide.vendor,
      width: slide.dimensions.width,
      height: slide.dimensions.height,
      levels: slide.levels.map((l) => ({ width: l.width, height: l.height, downsample: l.downsample })),
      mpp: slide.mpp,
      objectivePower: slide.objectivePower,
      createdAt: new Date().toISOString(),
    };
    await slide.close();
    await records.storage.commit(file.path, record.fileKey);
    // The record is written last: a slide is visible only once its file is in place.
    await records.storage.put(keys.slide(id), JSON.stringify(record, null, 2) + '\n');
    return { slide: record, duplicate: false };
  } finally {
    await rm(file.path, { force: true });
  }
}

/**
 * Opened slides kept for Deep Zoom requests (opening parses the whole TIFF directory; a viewer asks
 * for dozens of tiles a second). Evicted handles are closed.
 */
export class SlideHandles {
  private readonly cache: LruCache<string, Promise<Slide>>;

  /** @param max open slides kept @defaultValue 16 */
  constructor(private readonly records: Records, max = 16) {
    this.cache = new LruCache(max, (_id, p) => void p.then((s) => s.close()).catch(() => undefined));
  }

  open(id: string): Promise<Slide> {
    let p = this.cache.get(id);
    if (!p) {
      p = this.records.slide(id).then(async (r) => openSlide(await this.records.storage.localPath(r.fileKey)));
      p.catch(() => this.cache.deleteWhere((k) => k === id));
      this.cache.set(id, p);
    }
    return p;
  }

  forget(id: string): void {
    this.cache.deleteWhere((k) => k === id);
  }

  closeAll(): void {
    this.cache.deleteWhere(() => true);
  }
}
