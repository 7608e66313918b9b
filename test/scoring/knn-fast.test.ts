// knnScoresFast (knn-fast.ts) against the JS loop (`knnScores`) on random data: above the session
// threshold it takes the ORT path and gives the same scores within 1e-4 relative (the tolerance
// the callers need; knn-ort.ts's f64 re-ranking gives ~1e-15), plain and with self exclusion (the
// in-slide kNN's bank slot or -1, fit-reference's leave-one-out); below it, the JS loop itself;
// many small calls on one bank move to ORT once their work reaches the session's cost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { knnScores, type MemoryBank } from '../../src/scoring/knn.ts';
import { knnPathFor, knnScoresFast, releaseKnnSession, sessionWork } from '../../src/scoring/knn-fast.ts';
import { maxRel, rows } from './knn-test-data.ts';

const TOLERANCE = 1e-4;



test('above the threshold: the ORT path, scores = knnScores within 1e-4 relative, with and without self exclusion', async () => {
  const dim = 64, m = 1500, n = 600;
  // offset 3: norms far above the distances
  const bank: MemoryBank = { dim, count: m, data: rows(m, dim, 11, 3) };
  const queries = rows(n, dim, 12, 3);
  assert.ok(n * m * dim >= sessionWork(bank), 'the call alone is above the threshold');
  try {
    assert.equal(knnPathFor(bank, n), 'ort');
    for (const k of [1, 3]) {
      const got = await knnScoresFast(bank, queries, n, k);
      assert.equal(knnPathFor(bank, 1), 'ort', 'the session is kept for the bank');
      assert.ok(maxRel(knnScores(bank, queries, n, k), got) < TOLERANCE, `plain k ${k}`);
    }
    // leave-one-out on the bank itself (fit-reference): without the skip every score would be 0
    const self = (i: number) => i;
    const loo = await knnScoresFast(bank, bank.data, m, 3, self);
    assert.ok(loo.every((s) => s > 1), 'no query matched itself');
    assert.ok(maxRel(knnScores(bank, bank.data, m, 3, self), loo) < TOLERANCE, 'leave-one-out');
    // in-slide kNN: a tile skips its bank slot when it has one, else nothing (-1)
    const slot = (i: number) => (i % 3 === 0 ? i / 3 : -1);
    const mixed = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) mixed.set(i % 3 === 0 ? bank.data.subarray((i / 3) * dim, (i / 3 + 1) * dim) : queries.subarray(i * dim, (i + 1) * dim), i * dim);
    const got = await knnScoresFast(bank, mixed, n, 1, slot);
    assert.ok(got.every((s) => s > 1), 'bank rows did not match their own slot');
    assert.ok(maxRel(knnScores(bank, mixed, n, 1, slot), got) < TOLERANCE, 'self slot or -1');
  } finally {
    await releaseKnnSession();
  }
});

test('below the threshold: the JS loop itself; repeated small calls move to ORT once they have paid for the session', async () => {
  const dim = 32, m = 400;
  const bank: MemoryBank = { dim, count: m, data: rows(m, dim, 21) };
  const batch = 64;
  const perCall = batch * m * dim;
  const calls = Math.ceil(sessionWork(bank) / perCall);
  assert.ok(calls > 2, 'a single batch is below the threshold');
  try {
    for (let c = 0; c < calls; c++) {
      const q = rows(batch, dim, 100 + c);
      const path = knnPathFor(bank, batch);
      assert.equal(path, c < calls - 1 ? 'js' : 'ort', `call ${c}`);
      const self = (i: number) => (i === 5 ? c : -1);
      const got = await knnScoresFast(bank, q, batch, 2, self);
      const want = knnScores(bank, q, batch, 2, self);
      if (path === 'js') assert.deepEqual(got, want);
      else assert.ok(maxRel(want, got) < TOLERANCE);
    }
    assert.equal(knnPathFor(bank, 1), 'ort');
    // another bank takes the session's place; the first starts over on the JS loop
    const other: MemoryBank = { dim, count: 3000, data: rows(3000, dim, 22) };
    const q = rows(500, dim, 23);
    assert.equal(knnPathFor(other, 500), 'ort');
    assert.ok(maxRel(knnScores(other, q, 500, 3), await knnScoresFast(other, q, 500, 3)) < TOLERANCE);
    assert.equal(knnPathFor(bank, batch), 'js');
    assert.deepEqual(await knnScoresFast(bank, q, 4, 1), knnScores(bank, q, 4, 1));
  } finally {
    await releaseKnnSession();
  }
});

test('empty calls and empty banks stay on the JS loop', async () => {
  const bank: MemoryBank = { dim: 8, count: 0, data: new Float32Array(0) };
  assert.equal(knnPathFor(bank, 10), 'js');
  assert.deepEqual(await knnScoresFast(bank, new Float32Array(80), 10, 1), knnScores(bank, new Float32Array(80), 10, 1));
  const one: MemoryBank = { dim: 8, count: 5, data: rows(5, 8, 31) };
  assert.deepEqual(await knnScoresFast(one, new Float32Array(0), 0, 1), new Float64Array(0));
});

test('a bank past 2^26 floats never gets a session (its memory would be ~2.4x the bank again)', () => {
  // only the shape and the key matter to the choice: no 256-MiB allocation
  const big: MemoryBank = { dim: 1024, count: 2 ** 16 + 1, data: new Float32Array(1) };
  const atCap: MemoryBank = { dim: 1024, count: 2 ** 16, data: new Float32Array(1) };
  assert.equal(knnPathFor(big, 1e6), 'js');
  assert.equal(knnPathFor(atCap, 1e6), 'ort');
});
