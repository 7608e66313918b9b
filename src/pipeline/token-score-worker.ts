/**
 * Worker body of token-score-pool.ts: scores a run of tiles with `tileTopTokenDistances` and
 * answers {id, scores} (transferred) or {id, error}.
 */
import { parentPort } from 'node:worker_threads';
import { tileTopTokenDistances } from '../scoring/token-gaussian.ts';
import type { ScoreJob } from './token-score-pool.ts';

parentPort!.on('message', (job: ScoreJob) => {
  try {
    const tiles = job.tileEnd - job.tileStart, perTile = job.tokensPerTile * job.model.dim;
    // byteOffset is where tile 0 would start in `buffer` (negative for a copied share).
    const tokens = new Float32Array(job.buffer, job.byteOffset + job.tileStart * perTile * 4, tiles * perTile);
    const scores = tileTopTokenDistances(job.model, tokens, tiles, job.tokensPerTile);
    parentPort!.postMessage({ id: job.id, scores }, [scores.buffer as ArrayBuffer]);
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: (err as Error).stack ?? String(err) });
  }
});
