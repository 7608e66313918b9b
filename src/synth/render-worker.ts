/**
 * Worker body for tile rendering: receives {index, col, row}, answers {index, jpeg, reduced}
 * (transferred, not copied). Started by tile-producer.ts through render-worker-entry.mjs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { produceTile, type WorkerInit } from './tile-producer.ts';
import { TileRenderer } from './tile-render.ts';

// No sharp.concurrency()/cache() here: libvips is one instance per process, so those settings would
// change every other sharp user in the process too.
const init = workerData as WorkerInit;
const renderer = new TileRenderer(init.setup, init.atlas);
const size = init.setup.tileSize;

parentPort!.on('message', async (m: { index: number; col: number; row: number }) => {
  try {
    // A fresh buffer per tile: sharp reads it asynchronously while the next tile renders.
    const raw = new Uint8Array(size * size * 3);
    const t = await produceTile(renderer, raw, m.col, m.row, init.enc);
    // Copy the JPEG out of sharp's (possibly external) memory into a buffer this thread owns, then transfer it.
    const jpeg = t.jpeg ? new Uint8Array(t.jpeg) : null;
    const transfer = [jpeg?.buffer, t.reduced?.buffer].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
    parentPort!.postMessage({ index: m.index, jpeg, reduced: t.reduced }, transfer);
  } catch (err) {
    parentPort!.postMessage({ index: m.index, jpeg: null, reduced: null, error: (err as Error).stack ?? String(err) });
  }
});
