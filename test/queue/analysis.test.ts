import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { jobIds } from '../../src/queue/names.ts';
import { TEST_PARAMS, startService } from './service-harness.ts';

/** Reads tiles.csv into rows keyed by tile index, checking each index appears exactly once. */
function tileRows(csv: string): Map<number, string> {
  const [head, ...lines] = csv.trim().split('\n');
  assert.match(head!, /^index,col,row,x,y,width,height,tissue_fraction,score,raw_score$/);
  const rows = new Map<number, string>();
  for (const line of lines) {
    const index = Number(line.split(',')[0]);
    assert.ok(!rows.has(index), `tile ${index} appears twice`);
    rows.set(index, line);
  }
  return rows;
}

/** Collects server-sent `analysis` events until the server ends the stream. */
async function collectEvents(url: string): Promise<any[]> {
  const r = await fetch(url);
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  const text = await r.text();
  return text.split('\n\n').filter((b) => b.includes('event: analysis')).map((b) => JSON.parse(b.split('\n').find((l) => l.startsWith('data: '))!.slice(6)));
}

test('two worker processes analyse an uploaded slide; a worker killed with -9 mid-analysis changes nothing', { timeout: 240_000 }, async () => {
  const svc = await startService();
  try {
    const w1 = svc.startWorker();
    svc.startWorker();
    const slide = await svc.upload();

    // Undisturbed run, followed over server-sent events.
    const a = await svc.submit(slide.id);
    assert.equal(a.state, 'queued');
    const events = await collectEvents(`${svc.api.url}/api/analyses/${a.id}/events`);
    const done = events.at(-1);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    assert.ok(events.some((e) => e.state === 'running' || e.state === 'aggregating'), 'saw it running');
    assert.equal(done.progress.tilesDone, done.tilesTotal);
    assert.ok(done.tilesTotal >= 20, `${done.tilesTotal} tiles`);
    assert.equal(done.progress.batchesDone, Math.ceil(done.tilesTotal / TEST_PARAMS.batchSize));
    const ref = tileRows(await (await fetch(`${svc.api.url}/api/analyses/${a.id}/tiles.csv`)).text());
    assert.equal(ref.size, done.tilesTotal);
    const result = await (await fetch(`${svc.api.url}/api/analyses/${a.id}/result.json`)).json();
    assert.equal(result.input.sha256, (await (await fetch(`${svc.api.url}/api/slides/${slide.id}`)).json()).sha256);
    assert.equal(result.slideScore, done.score);
    for (const f of ['heatmap.png', 'regions.geojson']) assert.equal((await fetch(`${svc.api.url}/api/analyses/${a.id}/${f}`)).status, 200, f);

    // The same slide and parameters again: not redone.
    const again = await svc.submit(slide.id);
    assert.equal(again.id, a.id);
    assert.equal(again.state, 'completed');

    // Different result.json parameters (topTiles) but the same tile scores: a second analysis,
    // during which worker 1 is killed with SIGKILL while batches are in flight.
    const b = await svc.submit(slide.id, { ...TEST_PARAMS, topTiles: 5 });
    assert.notEqual(b.id, a.id);
    await svc.waitFor(b.id, (x) => x.progress.batchesDone >= 1, 60_000, 50);
    // Kill while both workers hold a batch (each runs one at a time), so worker 1 surely dies mid-job.
    for (let i = 0; i < 400 && (await svc.api.queue.queues.batch.getActiveCount()) < 2; i++) await new Promise((r) => setTimeout(r, 10));
    process.kill(-w1.pid!, 'SIGKILL');
    // The heatmap layer already shows the batches done so far (level 8: the whole slide in one tile).
    const live = await fetch(`${svc.api.url}/api/analyses/${b.id}/heatmap/dzi_files/8/0_0.png`);
    assert.equal(live.status, 200);
    const { data: rgba, info } = await sharp(Buffer.from(await live.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels], [139, 186, 4]);
    let opaque = 0;
    for (let i = 3; i < rgba.length; i += 4) if (rgba[i] === 255) opaque++;
    assert.ok(opaque > 0, 'scored tiles painted while running');
    const bDone = await svc.waitFor(b.id);
    assert.equal(bDone.state, 'completed', JSON.stringify(bDone));
    assert.equal(bDone.progress.tilesDone, bDone.tilesTotal, 'each tile counted once');
    const after = tileRows(await (await fetch(`${svc.api.url}/api/analyses/${b.id}/tiles.csv`)).text());
    assert.deepEqual(after, ref, 'exactly one score per tissue tile, equal to the undisturbed run');

    // The kill did hit a job: one batch was taken over after its lock expired.
    const counters = await Promise.all(Array.from({ length: bDone.batchesTotal }, async (_, i) => (await svc.api.queue.queues.batch.getJob(jobIds.batch(b.id, 1, i)))?.stalledCounter ?? 0));
    assert.ok(counters.some((c) => c > 0), `stalled counters ${counters}`);
  } finally {
    await svc.stop();
  }
});

test('cancelling an analysis stops its batches and keeps it cancelled; a batch of many slides fails one alone', { timeout: 180_000 }, async () => {
  const svc = await startService();
  try {
    const slide = await svc.upload();
    // Queue first, start the worker after: the batches are then surely waiting when we cancel.
    const a = await svc.submit(slide.id, { ...TEST_PARAMS, batchSize: 2 });
    svc.startWorker(['--no-sandbox']);
    await svc.waitFor(a.id, (x) => x.state === 'running', 60_000, 50);
    const r = await fetch(`${svc.api.url}/api/analyses/${a.id}`, { method: 'DELETE' });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).state, 'cancelled');
    await new Promise((res) => setTimeout(res, 3000));
    const later = await svc.get(a.id);
    assert.equal(later.state, 'cancelled');
    assert.ok(later.progress.batchesDone < later.batchesTotal, `${later.progress.batchesDone} of ${later.batchesTotal} batches ran`);
    assert.equal((await fetch(`${svc.api.url}/api/analyses/${a.id}/result.json`)).status, 404);
    const counts = await svc.api.queue.queues.batch.getJobCounts('waiting', 'active', 'prioritized');
    assert.deepEqual(counts, { waiting: 0, active: 0, prioritized: 0 });

    // A batch with a missing slide: that one fails with its reason, the real slide is analysed,
    // and submitting the batch again (resume) does not redo the finished analysis.
    const body = JSON.stringify({ slides: [slide.id, 'ffffffffffffffffffffffff'], params: TEST_PARAMS });
    const post = () => fetch(`${svc.api.url}/api/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const first = await (await post()).json();
    assert.equal(first.items[1].state, 'failed');
    assert.match(first.items[1].reason, /slide ffffffffffffffffffffffff not found/);
    const analysisId = first.items[0].analysisId;
    await svc.waitFor(analysisId);
    const summary = await (await fetch(`${svc.api.url}/api/batches/${first.id}`)).json();
    assert.equal(summary.done, true);
    assert.equal(summary.items[0].state, 'completed');
    assert.equal(typeof summary.items[0].score, 'number');
    const resumed = await (await post()).json();
    assert.equal(resumed.id, first.id);
    assert.equal(resumed.items[0].analysisId, analysisId);
    assert.equal((await svc.get(analysisId)).runs, 1, 'not redone');
  } finally {
    await svc.stop();
  }
});
