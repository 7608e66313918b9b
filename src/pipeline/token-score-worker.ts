/**
 * Worker body of token-score-pool.ts: scores a run of tiles with `tileTopTokenDistances` and
 * answers {id, scores} (transferred) or {id, error}.
 */
import { parentPort } from 'node:worker_threads';
import { tileTopTokenDistances } from '../scoring/token-gaussian.ts';
import { WORKER_MODELS, type ScoreJob } from './token-score-pool.ts';
import type { MahalanobisModel } from '../scoring/mahalanobis.ts';

/** Models by id, the latest few (one per analysis in flight); each keeps its cached whitening. */
const models = new Map<number, MahalanobisModel>();

parentPort!.on('message', (job: ScoreJob) => {
  try {
    if (job.model) {
      models.set(job.modelId, job.model);
      if (models.size > WORKER_MODELS) models.delete(models.keys().next().value!);
    }
    const model = models.get(job.modelId);
    if (!model) throw new Error(`model ${job.modelId} was never sent`);
    const tiles = job.tileEnd - job.tileStart, perTile = job.tokensPerTile * model.dim;
    // byteOffset is where tile 0 would start in `buffer` (negative for a copied share).
    const tokens = new Float32Array(job.buffer, job.byteOffset + job.tileStart * perTile * 4, tiles * perTile);
    const scores = tileTopTokenDistances(model, tokens, tiles, job.tokensPerTile);
    parentPort!.postMessage({ id: job.id, scores }, [scores.buffer as ArrayBuffer]);
  } catch (err) {
    parentPort!.postMessage({ id: job.id, error: (err as Error).stack ?? String(err) });
  }
});
