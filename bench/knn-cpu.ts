/**
 * The tile-mode kNN on the CPU, before and after knn-fast.ts: N queries against an M-entry bank
 * (random 384-d embeddings), scored as the per-batch callers score them (batch.ts, slide-scorer.ts:
 * one call per batch of B tiles). Before: `knnScores` (the JS loop), on the first `--js-queries`
 * queries and extrapolated linearly when fewer than N. After: `knnScoresFast` (ORT session opened
 * once its work pays, kept across batches), all N queries, session included. Scores compared on
 * the JS-timed queries (max relative difference).
 * Usage: node --import tsx bench/knn-cpu.ts [--queries 8000] [--bank 100000] [--dim 384] [--batch 32] [--k 3] [--js-queries N]
 */
import { parseArgs } from 'node:util';
import { knnScores } from '../src/scoring/knn.ts';
import { knnScoresFast, releaseKnnSession } from '../src/scoring/knn-fast.ts';
import { gaussian } from '../src/scoring/linalg.ts';
import { mulberry32 } from '../src/util/prng.ts';

const { values } = parseArgs({ options: { queries: { type: 'string' }, bank: { type: 'string' }, dim: { type: 'string' }, batch: { type: 'string' }, k: { type: 'string' }, 'js-queries': { type: 'string' } } });
const n = Number(values.queries ?? 8000), m = Number(values.bank ?? 100_000), dim = Number(values.dim ?? 384);
const batch = Number(values.batch ?? 32), k = Number(values.k ?? 3), jsN = Math.min(n, Number(values['js-queries'] ?? n));
const g = gaussian(mulberry32(3));
// a shared offset (embeddings are not centred) and per-row scale: the norms dominate the distances
const fill = (rows: number) => { const a = new Float32Array(rows * dim); for (let r = 0; r < rows; r++) { const s = 0.5 + (r % 7) / 7; for (let d = 0; d < dim; d++) a[r * dim + d] = 1 + s * g(); } return a; };
const bank = { dim, count: m, data: fill(m) };
const queries = fill(n);
const sec = (t: number) => (performance.now() - t) / 1000;
console.log(`kNN ${n} queries × ${m} bank × ${dim} dims, k ${k}, batches of ${batch}`);

let t = performance.now();
const js = new Float64Array(jsN);
for (let i = 0; i < jsN; i += batch) { const c = Math.min(batch, jsN - i); js.set(knnScores(bank, queries.subarray(i * dim, (i + c) * dim), c, k), i); }
const jsS = sec(t), jsAll = (jsS * n) / jsN;
console.log(`before (knnScores, JS): ${jsS.toFixed(1)} s for ${jsN} queries${jsN < n ? ` → ${jsAll.toFixed(1)} s for ${n} (extrapolated)` : ''}, ${(n / jsAll).toFixed(1)} queries/s`);

const rssBefore = process.memoryUsage().rss;
t = performance.now();
const fast = new Float64Array(n);
let first = 0;
for (let i = 0; i < n; i += batch) {
  const c = Math.min(batch, n - i);
  fast.set(await knnScoresFast(bank, queries.subarray(i * dim, (i + c) * dim), c, k), i);
  if (i === 0) first = sec(t);
}
const fastS = sec(t);
const rssSession = process.memoryUsage().rss - rssBefore;
await releaseKnnSession();
let rel = 0;
for (let i = 0; i < jsN; i++) rel = Math.max(rel, Math.abs(js[i]! - fast[i]!) / js[i]!);
console.log(`after (knnScoresFast): ${fastS.toFixed(1)} s for ${n} queries (first batch ${first.toFixed(2)} s; the session opens once the JS work on the bank pays for it), ${(n / fastS).toFixed(1)} queries/s`);
console.log(`resident memory while the session is kept: +${(rssSession / 2 ** 20).toFixed(0)} MiB (bank ${(m * dim * 4 / 2 ** 20).toFixed(0)} MiB)`);
console.log(`speed-up ${(jsAll / fastS).toFixed(1)}×; max relative difference ${rel.toExponential(1)} on ${jsN} queries`);
