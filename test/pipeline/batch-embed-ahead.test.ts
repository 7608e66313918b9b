// Embed ahead (issue 7): with a WebGPU engine, a batch walked in order starts embedding the next
// range once its tiles are read, so at most two embeddings are in flight. The outputs must equal,
// batch for batch, those of the plain serial loop (LAMINA_EMBED_AHEAD=0); every range is embedded
// exactly once when the caller walks them in order, and nothing is embedded ahead for a caller
// that hands out scattered ranges (a queue worker), whose outputs are still right.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { batchRanges, processBatch, type BatchOutput, type TileRange } from '../../src/pipeline/batch.ts';
import type { TileEmbedder } from '../../src/pipeline/embedder.ts';
import { planAnalysis } from '../../src/pipeline/plan.ts';
import { quietContext } from '../../src/pipeline/stage.ts';
import { openSlide } from '../../src/readers/registry.ts';
import type { RgbImage, Slide } from '../../src/readers/types.ts';
import type { TilePlan } from '../../src/tiling/tile-plan.ts';

const SAMPLE = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/slides/CMU-1-Small-Region.svs');
const params = parseAnalysisParams({ model: 'untrained-test-tiny', batchSize: 8 });

/**
 * A 'webgpu' embedder of 4 pixel statistics per tile; it counts calls and the most in flight. A call
 * lasts until the next call starts or 250 ms pass, so that an overlap the code allows is seen even
 * on a loaded machine (where the next range's read may take longer than any fixed short delay).
 */
function fakeEmbedder() {
  const stats = { calls: 0, inFlight: 0, maxInFlight: 0, firstTiles: [] as number[] };
  let wake: (() => void)[] = [];
  const embedder: TileEmbedder = {
    model: { name: 'fake', trained: false, embeddingSize: 4, inputSize: 64, mpp: null },
    device: 'webgpu',
    async embed(tiles: RgbImage[]) {
      stats.calls++;
      stats.maxInFlight = Math.max(stats.maxInFlight, ++stats.inFlight);
      const earlier = wake;
      wake = [];
      for (const w of earlier) w();
      await Promise.race([sleep(250), new Promise<void>((resolve) => wake.push(resolve))]);
      stats.inFlight--;
      const out = new Float32Array(tiles.length * 4);
      tiles.forEach((t, i) => {
        let s = 0, s2 = 0;
        for (const v of t.data) { s += v; s2 += v * v; }
        out.set([s / t.data.length, s2 / t.data.length, t.data[0]!, t.data[t.data.length - 1]!], i * 4);
      });
      return out;
    },
    close: async () => {},
  };
  return { embedder, stats };
}

let slide: Slide;
let plan: TilePlan;
let ranges: TileRange[];
const saved = { ahead: process.env.LAMINA_EMBED_AHEAD, read: process.env.LAMINA_READ_AHEAD };
before(async () => {
  delete process.env.LAMINA_READ_AHEAD; // on: the embedder is a GPU one
  slide = await openSlide(SAMPLE);
  ({ plan } = await planAnalysis({ slide }, params, quietContext()));
  ranges = batchRanges(plan, params.batchSize);
});
after(async () => {
  await slide?.close();
  for (const [k, v] of [['LAMINA_EMBED_AHEAD', saved.ahead], ['LAMINA_READ_AHEAD', saved.read]] as const) {
    if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
});

async function run(order: TileRange[], ahead: boolean) {
  process.env.LAMINA_EMBED_AHEAD = ahead ? '1' : '0';
  const { embedder, stats } = fakeEmbedder();
  const outs = new Map<number, BatchOutput>();
  for (const range of order) outs.set(range.start, await processBatch({ slide, plan, range, embedder, bank: null }, params, quietContext()));
  return { outs, stats };
}

test('embed ahead: same outputs as the serial loop, two embeddings in flight, each range embedded once', async () => {
  assert.ok(ranges.length >= 4, `${ranges.length} batches`);
  const serial = await run(ranges, false);
  assert.equal(serial.stats.maxInFlight, 1);
  const overlapped = await run(ranges, true);
  assert.equal(overlapped.stats.maxInFlight, 2);
  assert.equal(overlapped.stats.calls, ranges.length);
  for (const r of ranges) {
    const a = serial.outs.get(r.start)!, b = overlapped.outs.get(r.start)!;
    assert.equal(b.count, r.end - r.start);
    assert.deepEqual(b.embeddings, a.embeddings, `batch ${r.start}`);
  }
});

test('embed ahead: scattered ranges (a queue worker) embed nothing ahead and stay right', async () => {
  const scattered = ranges.filter((_, i) => i % 2 === 0).concat(ranges.filter((_, i) => i % 2 === 1));
  const serial = await run(ranges, false);
  const got = await run(scattered, true);
  assert.equal(got.stats.calls, ranges.length);
  assert.equal(got.stats.maxInFlight, 1);
  for (const r of ranges) assert.deepEqual(got.outs.get(r.start)!.embeddings, serial.outs.get(r.start)!.embeddings);
});
