// createKnnScorer: engine webgpu runs kernels/knn (lavapipe here) and matches knnScores to 1e-5
// relative; engine cpu is knnScores itself; k above the kernel's 8 falls back to the CPU scorer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { knnScores } from '../../src/scoring/knn.ts';
import { createKnnScorer } from '../../src/scoring/knn-gpu.ts';
import { randomUniform } from '../../kernels/dispatch/check.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

describe('createKnnScorer', () => {
  const bank = { dim: 24, count: 517, data: randomUniform(517 * 24, 3) };
  const q = randomUniform(70 * 24, 4);
  it('webgpu matches the CPU scorer (k = 1 and 5), and k = 12 falls back', async () => {
    const warnings: string[] = [];
    const s = await createKnnScorer(bank, { engine: 'webgpu', warn: (m) => warnings.push(m) });
    try {
      assert.equal(s.device, 'webgpu');
      assert.deepEqual(warnings, []);
      for (const k of [1, 5, 12]) {
        const got = await s.score(q, 70, k), want = knnScores(bank, q, 70, k);
        for (let i = 0; i < 70; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-5 * want[i]!, `k=${k} query ${i}: ${got[i]} vs ${want[i]}`);
      }
    } finally {
      await s.close();
    }
  });
  it('cpu engine is the CPU scorer', async () => {
    const s = await createKnnScorer(bank, { engine: 'cpu' });
    assert.equal(s.device, 'cpu');
    assert.deepEqual(await s.score(q, 70, 2), knnScores(bank, q, 70, 2));
  });
});
