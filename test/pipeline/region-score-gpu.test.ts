// The in-slide Mahalanobis of region cells with `--engine webgpu` goes through the shared GPU
// scorer (token-score-gpu.ts; lavapipe here, forced with LAMINA_TOKEN_SCORE_GPU=1): a real region
// analysis (synthetic slide, trained default encoder on the CPU so both runs see the same tokens)
// gives the CPU path's cell scores (LAMINA_TOKEN_SCORE_GPU=0) to 1e-4 relative, says in its log
// where the cells were scored, and leaves no GPU context open. A GPU that fails mid-stage leaves
// the rest of the cells to the CPU with a warning in that analysis's log (every analysis, none on
// the console), and the scores stay the same.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GpuContext } from '../../kernels/gpu/gpu-context.ts';
import { WhitenedNorms } from '../../kernels/whiten/whiten.ts';
import { parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { analyzeSlide } from '../../src/pipeline/analyze.ts';
import type { TileEmbedder } from '../../src/pipeline/embedder.ts';
import { openEmbedder } from '../../src/pipeline/open-embedder.ts';
import type { RegionAnalysisResult } from '../../src/pipeline/region-finish.ts';
import { quietContext, type StageContext } from '../../src/pipeline/stage.ts';
import { gpuTokenScorerState } from '../../src/pipeline/token-score-gpu.ts';
import { synthesizeSlide } from '../../src/synth/index.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const MODEL = 'lamina-vit-tiny-dino';
// one 512-px region a batch: several batches, so a failure can come mid-stage
const params = (engine: 'webgpu' | 'cpu') => parseAnalysisParams({ model: MODEL, regionSize: 512, scorer: 'mahalanobis', engine, batchSize: 5 });

const realCreate = GpuContext.create.bind(GpuContext);
let created = 0;
GpuContext.create = async (options) => {
  created++;
  return realCreate(options);
};
const saved = process.env.LAMINA_TOKEN_SCORE_GPU;
let dir: string, slidePath: string, embedder: TileEmbedder;
let cpu: { result: RegionAnalysisResult; cells: Float32Array };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lamina-region-gpu-'));
  slidePath = (await synthesizeSlide({ width: 1536, height: 1024, out: join(dir, 'slide.tiff'), anomalies: 2, seed: 9 })).path;
  embedder = await openEmbedder(MODEL, 'cpu', 2);
  process.env.LAMINA_TOKEN_SCORE_GPU = '0';
  const log = logged();
  cpu = await analyse('cpu-path', log.ctx);
  assert.equal(created, 0, 'LAMINA_TOKEN_SCORE_GPU=0: no GPU context, not even a probe');
  assert.ok(log.info.includes(`Mahalanobis distances of ${cpu.result.encoding.cells} cells on the CPU`), log.info.join('\n'));
  process.env.LAMINA_TOKEN_SCORE_GPU = '1';
});
after(async () => {
  GpuContext.create = realCreate;
  if (saved === undefined) delete process.env.LAMINA_TOKEN_SCORE_GPU; else process.env.LAMINA_TOKEN_SCORE_GPU = saved;
  await embedder?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A stage context whose log is kept. */
function logged(): { ctx: StageContext; info: string[]; warn: string[] } {
  const info: string[] = [], warn: string[] = [];
  return { ctx: { ...quietContext(), log: { info: (m) => info.push(m), warn: (m) => warn.push(m) } }, info, warn };
}

async function analyse(name: string, ctx: StageContext, engine: 'webgpu' | 'cpu' = 'webgpu') {
  const out = join(dir, name);
  const result = await analyzeSlide(slidePath, params(engine), ctx, { outDir: out, embedder }) as RegionAnalysisResult;
  const bytes = await readFile(join(out, 'scores.f32'));
  return { result, cells: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) };
}

/** Calibrated cell scores (NaN where no cell) and the top cells' raw scores agree to 1e-4 relative. */
function sameScores(a: typeof cpu, b: typeof cpu): void {
  assert.equal(a.cells.length, b.cells.length);
  let compared = 0;
  for (let i = 0; i < a.cells.length; i++) {
    if (Number.isNaN(b.cells[i]!)) { assert.ok(Number.isNaN(a.cells[i]!), `cell ${i}`); continue; }
    assert.ok(Math.abs(a.cells[i]! - b.cells[i]!) <= 1e-4 * Math.abs(b.cells[i]!), `cell ${i}: ${a.cells[i]} vs ${b.cells[i]}`);
    compared++;
  }
  assert.equal(compared, b.result.encoding.cells);
  assert.deepEqual(a.result.topTiles.map((t) => t.index), b.result.topTiles.map((t) => t.index));
  a.result.topTiles.forEach((t, i) => assert.ok(Math.abs(t.rawScore - b.result.topTiles[i]!.rawScore) <= 1e-4 * b.result.topTiles[i]!.rawScore, `raw ${i}`));
}

test('engine webgpu: the shared GPU scorer gives the CPU path\'s cell scores, and its context is closed after the analysis', { timeout: 300_000 }, async () => {
  const log = logged();
  const before = created;
  const gpu = await analyse('gpu-path', log.ctx);
  assert.equal(created - before, 1, 'one context for the cells');
  assert.ok(log.info.includes(`Mahalanobis distances of ${gpu.result.encoding.cells} cells on the GPU`), log.info.join('\n'));
  assert.deepEqual(log.warn, []);
  assert.ok(gpu.result.encoding.regions > 2 && gpu.result.encoding.cells > 1000, `${gpu.result.encoding.regions} regions, ${gpu.result.encoding.cells} cells`);
  assert.equal(gpu.result.scorer.method, 'mahalanobis');
  sameScores(gpu, cpu);
  assert.deepEqual(gpuTokenScorerState(), { models: 0, contextOpen: false }, 'nothing outlives the analysis');
  // engine cpu never asks for the GPU, whatever the variable says
  const onCpu = await analyse('engine-cpu', logged().ctx, 'cpu');
  assert.equal(created - before, 1);
  sameScores(onCpu, cpu);
});

test('a GPU that fails mid-stage: the rest of the cells on the CPU, a warning in each analysis\'s log, none on the console', { timeout: 300_000 }, async () => {
  const real = WhitenedNorms.prototype.distances;
  const consoleWarn = console.warn;
  const onConsole: string[] = [];
  console.warn = (m: string) => { onConsole.push(m); };
  try {
    for (const run of [1, 2]) {
      let calls = 0;
      WhitenedNorms.prototype.distances = function (rows, n) {
        if (++calls === 2) return Promise.reject(new Error('device lost (test)'));
        return real.call(this, rows, n);
      };
      const log = logged();
      const r = await analyse(`failing-${run}`, log.ctx);
      assert.equal(calls, 2, 'no GPU call after the failure');
      assert.equal(log.warn.length, 1, log.warn.join('\n'));
      assert.match(log.warn[0]!, /GPU token scoring failed \(device lost \(test\)\); scoring the rest of the cells on the CPU/);
      assert.ok(log.info.some((m) => /cells \(\d+ on the GPU, the rest on the CPU\)$/.test(m)), log.info.join('\n'));
      sameScores(r, cpu);
      assert.deepEqual(gpuTokenScorerState(), { models: 0, contextOpen: false });
    }
  } finally {
    WhitenedNorms.prototype.distances = real;
    console.warn = consoleWarn;
  }
  assert.deepEqual(onConsole.filter((m) => /GPU token scoring/.test(m)), []);
});
