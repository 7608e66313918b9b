/**
 * Issue 7: the in-slide scoring of region cells alone, at gigapixel scale without encoding — N
 * synthetic 192-d cell tokens (two tissue modes plus noise, on a square cell grid) scored as
 * region-finish.ts scores them: Mahalanobis (fit on an even sample of 8,192, distances on the CPU
 * blocked product and on the GPU whitening kernel) and kNN to the even sample beyond 256 px (16
 * cells), GPU and CPU. CPU timings use the first `--cpu-cells` cells and are extrapolated; GPU
 * scores are checked against the CPU ones on those cells. The CPU kNN runs twice: the JS loop
 * (`knnScores`) and onnxruntime's Gemm blocks (`createOrtKnn`, the CPU engine's path), on the same cells.
 * Usage: node --import tsx bench/region-scoring.ts [--cells 1600000] [--dim 192] [--cpu-cells 20000] [--engine webgpu]
 */
import { parseArgs } from 'node:util';
import { fitMahalanobis, mahalanobisScores } from '../src/scoring/mahalanobis.ts';
import { gpuTokenDistances, releaseGpuTokenScorer, tokenScoreOnGpu } from '../src/pipeline/token-score-gpu.ts';
import { knnScores, packPosition } from '../src/scoring/knn.ts';
import { createKnnScorer } from '../src/scoring/knn-gpu.ts';
import { createOrtKnn, createOrtKnnScorer } from '../src/scoring/knn-ort.ts';
import { fitSampleIndices } from '../src/pipeline/slide-scorer.ts';
import { gaussian } from '../src/scoring/linalg.ts';
import { mulberry32 } from '../src/util/prng.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const { values } = parseArgs({ options: { cells: { type: 'string' }, dim: { type: 'string' }, 'cpu-cells': { type: 'string' }, engine: { type: 'string' } } });
const N = Number(values.cells ?? 1_600_000), dim = Number(values.dim ?? 192), cpuN = Math.min(N, Number(values['cpu-cells'] ?? 20_000));
const engine = (values.engine ?? 'webgpu') as 'webgpu' | 'cpu';
const BATCH = 49_152; // cells per batch output of 1,024² regions at batch size 256 (12 regions × 4,096)
const g = gaussian(mulberry32(7));
const modes = [Float32Array.from({ length: dim }, () => g()), Float32Array.from({ length: dim }, () => g())];
const cells = new Float32Array(N * dim);
for (let i = 0; i < N; i++) { const m = modes[i % 7 < 4 ? 0 : 1]!; for (let d = 0; d < dim; d++) cells[i * dim + d] = m[d]! + 0.5 * g() * (1 + (d % 5) / 5); }
const side = Math.ceil(Math.sqrt(N));
const positions = Uint32Array.from({ length: N }, (_, i) => packPosition(i % side, Math.floor(i / side)));
const sampleIdx = fitSampleIndices(N, 8192);
const sample = new Float32Array(sampleIdx.length * dim);
sampleIdx.forEach((k, j) => sample.set(cells.subarray(k * dim, (k + 1) * dim), j * dim));
const s = (t: number) => ((performance.now() - t) / 1000).toFixed(2);
console.log(`${N} cells × ${dim}, sample ${sampleIdx.length}; CPU timed on ${cpuN} cells`);

let t = performance.now();
const model = fitMahalanobis(sample, sampleIdx.length, dim);
console.log(`Mahalanobis fit: ${s(t)} s`);
t = performance.now();
const cpuMaha = mahalanobisScores(model, cells.subarray(0, cpuN * dim), cpuN);
const cpuMahaS = (performance.now() - t) / 1000;
console.log(`Mahalanobis CPU: ${cpuMahaS.toFixed(2)} s for ${cpuN} cells → ${(cpuMahaS / cpuN * N).toFixed(1)} s for ${N}`);
// as region-finish.ts: the shared GPU scorer (on a software adapter only with LAMINA_TOKEN_SCORE_GPU=1), else the CPU
const onGpu = engine === 'webgpu' && tokenScoreOnGpu();
let gpuRows = 0;
t = performance.now();
const gpuMaha = new Float64Array(N);
for (let b = 0; b < N; b += BATCH) {
  const c = Math.min(BATCH, N - b), x = cells.subarray(b * dim, (b + c) * dim);
  const d = onGpu ? await gpuTokenDistances(model, x, c) : null;
  if (d) gpuRows += c;
  gpuMaha.set(d ?? mahalanobisScores(model, x, c), b);
}
console.log(`Mahalanobis ${gpuRows === N ? 'webgpu' : gpuRows ? `webgpu (${gpuRows} rows) then cpu` : 'cpu'}: ${s(t)} s for ${N} cells (batches of ${BATCH}); max rel diff vs CPU ${maxRel(cpuMaha, gpuMaha).toExponential(2)}`);
await releaseGpuTokenScorer(model);

const bank = { dim, count: sampleIdx.length, data: sample };
const bankPositions = Uint32Array.from(sampleIdx, (k) => positions[k]!);
const radius = 16;
t = performance.now();
const cpuKnn = knnScores(bank, cells.subarray(0, cpuN * dim), cpuN, 3, undefined, { bankPositions, positions: positions.subarray(0, cpuN), radius });
const cpuKnnS = (performance.now() - t) / 1000;
console.log(`kNN (k=3, beyond ${radius} cells) CPU: ${cpuKnnS.toFixed(2)} s for ${cpuN} cells → ${(cpuKnnS / cpuN * N).toFixed(0)} s for ${N}`);
t = performance.now();
const ortKnn = await createOrtKnn(bank);
const openS = (performance.now() - t) / 1000;
t = performance.now();
const ortScores = await ortKnn.score(cells.subarray(0, cpuN * dim), cpuN, 3, undefined, { bankPositions, positions: positions.subarray(0, cpuN), radius });
const ortS = (performance.now() - t) / 1000;
await ortKnn.close();
console.log(`kNN CPU onnxruntime: session ${openS.toFixed(2)} s, ${ortS.toFixed(2)} s for ${cpuN} cells (${Math.round(cpuN / ortS)} cells/s vs JS ${Math.round(cpuN / cpuKnnS)}) → ${(ortS / cpuN * N).toFixed(0)} s for ${N}; max rel diff vs JS ${maxRel(cpuKnn, ortScores).toExponential(2)}`);
// as region-finish.ts: engine cpu (or no GPU) scores on onnxruntime
let gk = await createKnnScorer(bank, { engine, bankPositions });
if (gk.device === 'cpu') gk = await createOrtKnnScorer(bank, { bankPositions });
t = performance.now();
const gpuKnn = new Float64Array(N);
for (let b = 0; b < N; b += BATCH) { const c = Math.min(BATCH, N - b); gpuKnn.set(await gk.score(cells.subarray(b * dim, (b + c) * dim), c, 3, { positions: positions.subarray(b, b + c), radius }), b); }
console.log(`kNN ${gk.device === 'cpu' ? 'cpu (onnxruntime)' : gk.device}: ${s(t)} s for ${N} cells; max rel diff vs CPU ${maxRel(cpuKnn, gpuKnn).toExponential(2)}`);
await gk.close();

function maxRel(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / Math.max(1e-12, Math.abs(a[i]!)));
  return m;
}
