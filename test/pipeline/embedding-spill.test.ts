/**
 * The embedding spill reads batches back into one reused pair of arrays (no garbage per batch):
 * same values as appended, in order, on every pass, with and without scores, and the arrays of
 * successive batches share one buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddingSpill } from '../../src/pipeline/embedding-spill.ts';
import type { BatchOutput } from '../../src/pipeline/batch.ts';

function batch(start: number, count: number, dim: number, withScores: boolean): BatchOutput {
  const embeddings = new Float32Array(count * dim).map((_, i) => Math.sin(start * 7919 + i) * 100);
  const rawScores = withScores ? new Float64Array(count).map((_, i) => Math.PI * (start + i) + 1e-12 * i) : null;
  return { start, count, dim, embeddings, rawScores };
}

for (const withScores of [false, true]) {
  test(`spill ${withScores ? 'with' : 'without'} scores: every pass gives back the batches as appended, in one reused buffer`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lamina-spill-'));
    const spill = new EmbeddingSpill(join(dir, 'spill.tmp'));
    try {
      // a short last batch, as the plan's last range is
      const written = [batch(0, 32, 24, withScores), batch(32, 32, 24, withScores), batch(64, 32, 24, withScores), batch(96, 5, 24, withScores)];
      for (const b of written) await spill.append(b);
      assert.equal((await stat(join(dir, 'spill.tmp'))).size, 101 * 24 * 4 + (withScores ? 101 * 8 : 0), 'values only, no per-batch framing');
      for (let pass = 0; pass < 2; pass++) {
        const buffers = new Set<ArrayBufferLike>();
        let i = 0;
        for await (const out of spill.read()) {
          const want = written[i++]!;
          assert.deepEqual([out.start, out.count, out.dim], [want.start, want.count, want.dim]);
          assert.deepEqual(out.embeddings, want.embeddings);
          assert.deepEqual(out.rawScores, want.rawScores);
          buffers.add(out.embeddings.buffer);
        }
        assert.equal(i, written.length);
        assert.equal(buffers.size, 1, 'one embeddings buffer for the whole pass');
      }
    } finally {
      await spill.dispose();
      await spill.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test('an empty spill reads as no batches', async () => {
  const spill = new EmbeddingSpill(join(tmpdir(), `lamina-spill-empty-${process.pid}`));
  for await (const _ of spill.read()) assert.fail('no batch expected');
  await spill.dispose();
});
