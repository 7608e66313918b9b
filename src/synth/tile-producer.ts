/**
 * Produces finished level-0 tiles (JPEG bytes + the tile reduced for the next level) in a fixed
 * order, either on this thread or on worker threads. Workers run ahead of the consumer by a
 * bounded window, so memory stays bounded and the output order (and thus the file) does not
 * depend on which worker finishes first.
 */
import { Worker } from 'node:worker_threads';
import sharp from 'sharp';
import type { StromaAtlas } from './atlas.ts';
import { boxDownsample } from './pyramid.ts';
import { TileRenderer, type RenderSetup } from './tile-render.ts';

/** One finished level-0 tile; `reduced` is null for bare glass (the JPEG is then the shared glass tile). */
export interface ProducedTile { jpeg: Uint8Array | null; reduced: Uint8Array | null }

export interface EncodeSettings { quality: number; factor: number }

/** JPEG settings shared by every tile: baseline JFIF, 4:2:0 (matches YCbCrSubsampling 2,2 in the IFD). */
export function encodeJpeg(raw: Uint8Array, size: number, quality: number): Promise<Uint8Array> {
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:2:0', optimiseCoding: true })
    .toBuffer()
    .then((b) => new Uint8Array(b.buffer, b.byteOffset, b.length));
}

/** Renders, encodes and reduces one level-0 tile. */
export async function produceTile(renderer: TileRenderer, raw: Uint8Array, col: number, row: number, enc: EncodeSettings): Promise<ProducedTile> {
  const T = renderer.setup.tileSize;
  if (!renderer.render(col * T, row * T, raw)) return { jpeg: null, reduced: null };
  const reduced = boxDownsample(raw, T, enc.factor);
  return { jpeg: await encodeJpeg(raw, T, enc.quality), reduced };
}

/** What a worker is started with (structured-cloned). */
export interface WorkerInit { setup: RenderSetup; atlas: StromaAtlas; enc: EncodeSettings }

/** Tiles in `order` (pairs col,row), fetched with `next()` one after another. */
export interface TileProducer {
  next(): Promise<ProducedTile>;
  close(): Promise<void>;
}

/** Renders on the calling thread; no prefetch. */
export function inlineProducer(setup: RenderSetup, atlas: StromaAtlas, enc: EncodeSettings, order: Int32Array): TileProducer {
  const renderer = new TileRenderer(setup, atlas);
  const raw = new Uint8Array(setup.tileSize * setup.tileSize * 3);
  let k = 0;
  return {
    next: () => {
      const col = order[2 * k], row = order[2 * k + 1];
      k++;
      return produceTile(renderer, raw, col, row, enc);
    },
    close: async () => {},
  };
}

const WORKER_ENTRY = new URL('./render-worker-entry.mjs', import.meta.url);

/** A copy in shared memory: posted to workers without a copy per worker. */
function shared(a: Uint8Array): Uint8Array {
  const s = new Uint8Array(new SharedArrayBuffer(a.length));
  s.set(a);
  return s;
}

/** The init with its large arrays (atlas, real patches: ~15 MB) moved to shared memory. */
function shareInit(init: WorkerInit): WorkerInit {
  const { setup, atlas } = init;
  const patch = <P extends { data: Uint8Array }>(p: P): P => ({ ...p, data: shared(p.data) });
  return {
    ...init,
    atlas: { fibre: shared(atlas.fibre), fibreCross: shared(atlas.fibreCross), grain: shared(atlas.grain) },
    setup: { ...setup, patches: setup.patches.map(patch), backgroundPatch: setup.backgroundPatch && patch(setup.backgroundPatch) },
  };
}

/** Renders on `count` worker threads, up to `window` tiles ahead of the consumer. */
export function workerProducer(init: WorkerInit, order: Int32Array, count: number, window = 4 * count): TileProducer {
  const sharedInit = shareInit(init);
  const total = order.length / 2;
  const pending = new Map<number, { resolve: (t: ProducedTile) => void; reject: (e: unknown) => void; promise: Promise<ProducedTile> }>();
  let failure: unknown = null;
  let closing = false;
  const workers = Array.from({ length: count }, () => {
    // A small old generation makes V8 collect the per-tile buffers early instead of growing the heap.
    const w = new Worker(WORKER_ENTRY, { workerData: sharedInit, resourceLimits: { maxOldGenerationSizeMb: 128, maxYoungGenerationSizeMb: 8 } });
    w.on('message', (m: { index: number; jpeg: Uint8Array | null; reduced: Uint8Array | null; error?: string }) => {
      const p = pending.get(m.index);
      if (!p) return;
      if (m.error) p.reject(new Error(`synth worker failed on tile ${m.index}: ${m.error}`));
      else p.resolve({ jpeg: m.jpeg, reduced: m.reduced });
    });
    w.on('error', (err) => {
      failure = err;
      for (const p of pending.values()) p.reject(err);
    });
    w.on('exit', (code) => {
      if (closing || failure) return;
      failure = new Error(`synth worker exited with code ${code}`);
      for (const p of pending.values()) p.reject(failure);
    });
    return w;
  });
  let submitted = 0, consumed = 0;
  const submit = () => {
    while (submitted < total && submitted < consumed + window) {
      const index = submitted++;
      let resolve!: (t: ProducedTile) => void, reject!: (e: unknown) => void;
      const promise = new Promise<ProducedTile>((res, rej) => { resolve = res; reject = rej; });
      promise.catch(() => {}); // rejections surface through next()
      pending.set(index, { resolve, reject, promise });
      // Round-robin keeps both workers equally loaded; tiles differ little in cost.
      workers[index % count].postMessage({ index, col: order[2 * index], row: order[2 * index + 1] });
    }
  };
  return {
    next: async () => {
      if (failure) throw failure;
      submit();
      const index = consumed++;
      const p = pending.get(index)!;
      try {
        return await p.promise;
      } finally {
        pending.delete(index);
        submit();
      }
    },
    close: async () => {
      closing = true;
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
