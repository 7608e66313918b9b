/**
 * Issue 7: localisation with native-resolution regions vs 224-px tiles on synthetic planted-anomaly
 * slides, through the analysis itself (`analyzeSlide`, the code `lamina analyze` runs) on any
 * engine: `--engine cpu` (onnxruntime, the any-size region graph) or `webgpu` (our engine).
 * Each mode runs with a token reference bank (fit-reference --bank-entries tokens on an anomaly-free
 * synthetic slide; regions: kNN per 16-px token, tiles: a tile's worst token) and, with
 * `--in-slide`, without one (regions: in-slide kNN to the slide's own cells beyond 256 px, the
 * default, and in-slide Mahalanobis; tiles: in-slide Mahalanobis). Measured from each result folder's scores.f32
 * against the true mask, on the 16-px cells both modes scored (src/heatmap/localisation.ts):
 * patch AUROC, anomalies found (any cell above the 99th percentile of normal cells) and the
 * smallest found.
 * Usage: node --import tsx bench/region-vs-tiles.ts [--size 4096] [--region 1024] [--engine cpu]
 *   [--model lamina-vit-tiny-dino] [--anomalies 8] [--seed 5] [--in-slide] [--region-bank]
 * `--region-bank` adds a bank of the normal slide's region tokens (fit-reference with regionSize).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { analysisDefaults, parseAnalysisParams, type AnalysisParamsInput } from '../pipelines/anomaly.ts';
import { analyzeSlide } from '../src/pipeline/analyze.ts';
import { fitReference } from '../src/pipeline/fit-reference.ts';
import { openEmbedder } from '../src/pipeline/open-embedder.ts';
import { quietContext } from '../src/pipeline/stage.ts';
import { readTruth, synthesizeSlide } from '../src/synth/index.ts';
import { localisation, readCellScores, type Localisation } from '../src/heatmap/localisation.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';
const { values } = parseArgs({ options: {
  size: { type: 'string' }, region: { type: 'string' }, engine: { type: 'string' }, model: { type: 'string' },
  anomalies: { type: 'string' }, seed: { type: 'string' }, 'in-slide': { type: 'boolean' }, 'region-bank': { type: 'boolean' },
} });
const size = Number(values.size ?? 4096), R = Number(values.region ?? 1024), seed = Number(values.seed ?? 5);
const engine = (values.engine ?? 'cpu') as 'cpu' | 'webgpu';
const model = values.model ?? analysisDefaults.model;
const dir = mkdtempSync(join(tmpdir(), 'lamina-rvt-'));
const embedder = await openEmbedder(model, engine);
console.log(`${model} on ${embedder.device} (${cpus().length} CPU cores: ${cpus()[0]?.model}); slides ${size}² px, regions ${R}², tiles 224 px, cells 16 px`);

const t0 = performance.now();
const normal = await synthesizeSlide({ width: size, height: size, out: join(dir, 'normal.tiff'), anomalies: 0, seed: seed + 100 });
const test = await synthesizeSlide({
  width: size, height: size, out: join(dir, 'test.tiff'), anomalies: Number(values.anomalies ?? 8), seed,
  minAnomalySize: 48, maxAnomalySize: Math.max(64, Math.min(400, Math.floor(size / 6))),
});
const bank = join(dir, 'bank.lmb');
await fitReference([normal.path], parseAnalysisParams({ model, engine, bankEntries: 'tokens' }), quietContext(), embedder, bank);
// --region-bank: a second bank of the normal slide's region tokens (fit-reference --region-size R)
const regionBank = join(dir, 'region-bank.lmb');
if (values['region-bank']) await fitReference([normal.path], parseAnalysisParams({ model, engine, regionSize: R }), quietContext(), embedder, regionBank);
console.log(`synth + token bank${values['region-bank'] ? 's' : ''}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const runs: { label: string; params: AnalysisParamsInput }[] = [
  { label: `native ${R}² regions, per-token kNN to the token bank`, params: { regionSize: R, reference: bank } },
  { label: '224-px tiles, worst token kNN to the token bank', params: { reference: bank } },
  ...(values['region-bank'] ? [{ label: `native ${R}² regions, per-token kNN to a bank of ${R}² region tokens`, params: { regionSize: R, reference: regionBank } }] : []),
  ...(values['in-slide'] ? [
    { label: `native ${R}² regions, in-slide kNN per token (own cells beyond 256 px; the default)`, params: { regionSize: R } },
    { label: `native ${R}² regions, in-slide Mahalanobis per token`, params: { regionSize: R, scorer: 'mahalanobis' as const } },
    { label: '224-px tiles, in-slide Mahalanobis per tile', params: {} },
  ] : []),
];
const outs: { label: string; out: string; seconds: number; encode: number }[] = [];
for (const [i, run] of runs.entries()) {
  const out = join(dir, `out-${i}`);
  const t = performance.now();
  const result = await analyzeSlide(test.path, parseAnalysisParams({ model, engine, ...run.params }), quietContext(), { outDir: out, embedder });
  outs.push({ label: run.label, out, seconds: (performance.now() - t) / 1000, encode: (result.timings.encode ?? 0) / 1000 });
  console.log(`${run.label}: ${((performance.now() - t) / 1000).toFixed(1)} s (encode ${((result.timings.encode ?? 0) / 1000).toFixed(1)} s)`);
}

const { sidecar, mask } = await readTruth(test.sidecarPath);
const truth = { mask, anomalies: sidecar.anomalies };
const grids = await Promise.all(outs.map((o) => readCellScores(o.out, 16)));
// every mode on the cells all modes scored
const common = { cols: grids[0]!.cols, rows: grids[0]!.rows, data: grids[0]!.data.map((_, i) => (grids.every((g) => Number.isFinite(g.data[i]!)) ? 0 : NaN)) };
const rows: Localisation[] = grids.map((g) => localisation(g, 16, truth, common));
console.log(`anomalies planted: ${sidecar.anomalies.length}, sizes ${sidecar.anomalies.map((a) => a.size).sort((a, b) => a - b).join(', ')} px; ` +
  `compared cells ${rows[0]!.cells} (${rows[0]!.anomalousCells} anomalous); peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
console.log('| mode | patch AUROC (16-px cells) | anomalies found | smallest found | analysis wall s (encode) |');
console.log('|---|---|---|---|---|');
rows.forEach((r, i) => {
  const o = outs[i]!;
  console.log(`| ${o.label} | ${r.auroc.toFixed(4)} | ${r.found} of ${r.planted} | ${r.smallestFound === null ? 'none' : `${r.smallestFound} px`} | ${o.seconds.toFixed(1)} (${o.encode.toFixed(1)}) |`);
});
await embedder.close();
rmSync(dir, { recursive: true, force: true });
