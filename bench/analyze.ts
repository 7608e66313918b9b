/**
 * `npm run bench:analyze`: tiles/s, peak RSS and time by stage of `lamina analyze` on synthetic
 * slides of two sizes (default 32768² ≈ 1.07 GP and 65536² ≈ 4.29 GP), side by side, so one sees
 * that RSS does not grow with the slide. Each run is its own process under GNU time (peak RSS =
 * max resident set of the process). The slides are made once with `lamina synth` and cached in
 * /tmp/lamina-bench (LAMINA_BENCH_DIR); the first run takes minutes.
 *
 * Correctness first: each result is checked (tiles.csv rows = tissue tiles, result.json complete)
 * and scored against the slide's true anomalies (AUROC/AUPRO) before figures are printed.
 *
 * Model: the tiny built-in encoder (untrained-test-tiny, 64 px input) by default, since ViT-S/16 on
 * two CPU cores over ~50k tiles would take hours; LAMINA_BENCH_MODEL overrides.
 * Usage: npm run bench:analyze [-- --sizes 32768,65536]
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesizeSlide } from '../src/synth/index.ts';
import { evaluateSynth } from './synth-eval.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = process.env.LAMINA_BENCH_DIR ?? '/tmp/lamina-bench';
const model = process.env.LAMINA_BENCH_MODEL ?? 'untrained-test-tiny';
const sizesArg = process.argv.indexOf('--sizes');
const sizes = (sizesArg > 0 ? process.argv[sizesArg + 1]! : '32768,65536').split(',').map(Number);

async function ensureSlide(size: number): Promise<string> {
  const path = join(cacheDir, `synth-${size === 32768 ? '32k' : size === 65536 ? '64k' : size}.tiff`);
  if (existsSync(path) && existsSync(path.replace(/\.tiff$/, '.anomalies.json'))) return path;
  await mkdir(cacheDir, { recursive: true });
  console.error(`making ${path} (${size}×${size}) with lamina synth — minutes`);
  await synthesizeSlide({ width: size, height: size, out: path, anomalies: size >= 65536 ? 16 : 12, seed: size >= 65536 ? 22 : 21 });
  return path;
}

interface Run { size: number; slideBytes: number; tiles: number; seconds: number; rssMiB: number; timings: Record<string, number>; auroc: number; aupro: number }

function runAnalyze(slide: string, out: string): Promise<{ rssKiB: number; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/time', ['-f', 'LAMINA_MAXRSS_KIB=%M', process.execPath, join(root, 'bin/lamina.js'), 'analyze', slide, '--out', out, '--model', model], { cwd: root });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', () => {});
    child.on('close', (code) => resolve({ code, stderr, rssKiB: Number(/LAMINA_MAXRSS_KIB=(\d+)/.exec(stderr)?.[1] ?? NaN) }));
  });
}

const runs: Run[] = [];
for (const size of sizes) {
  const slide = await ensureSlide(size);
  const out = join(cacheDir, `analyze-${size}`);
  await rm(out, { recursive: true, force: true });
  const started = performance.now();
  const { rssKiB, stderr, code } = await runAnalyze(slide, out);
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`analyze failed on ${slide}:\n${stderr}`);
  const result = JSON.parse(await readFile(join(out, 'result.json'), 'utf8'));
  const rows = (await readFile(join(out, 'tiles.csv'), 'utf8')).trim().split('\n').length - 1;
  if (rows !== result.tiles.analysed) throw new Error(`tiles.csv has ${rows} rows, result.json says ${result.tiles.analysed}`);
  const evaluation = await evaluateSynth(out, slide.replace(/\.tiff$/, '.anomalies.json'));
  const { size: slideBytes } = await import('node:fs').then((fs) => fs.statSync(slide));
  runs.push({ size, slideBytes, tiles: rows, seconds, rssMiB: rssKiB / 1024, timings: result.timings, auroc: evaluation.auroc, aupro: evaluation.aupro });
}

const lines = [
  `command: npm run bench:analyze (lamina analyze --model ${model}, defaults otherwise: 224 px tiles at level 0, in-slide robust Mahalanobis)`,
  `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; date ${new Date().toISOString().slice(0, 10)}`,
  '',
  '| slide (level 0) | gigapixels | file MB | tissue tiles | wall s | tiles/s (encode) | tiles/s (end to end) | peak RSS MiB | open+checksum s | tissue s | plan s | encode s (read + embed) | score s | aggregate s | AUROC | AUPRO |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...runs.map((r) => `| ${r.size}×${r.size} | ${(r.size * r.size / 1e9).toFixed(2)} | ${(r.slideBytes / 1e6).toFixed(0)} | ${r.tiles} | ${r.seconds.toFixed(1)} | ${(r.tiles / (r.timings.encode! / 1000)).toFixed(1)} | ${(r.tiles / r.seconds).toFixed(1)} | ${r.rssMiB.toFixed(0)} | ${(r.timings.open! / 1000).toFixed(1)} | ${(r.timings.tissue! / 1000).toFixed(1)} | ${(r.timings.plan! / 1000).toFixed(1)} | ${(r.timings.encode! / 1000).toFixed(1)} (${(r.timings.read! / 1000).toFixed(1)} + ${(r.timings.embed! / 1000).toFixed(1)}) | ${(r.timings.score! / 1000).toFixed(1)} | ${(r.timings.aggregate! / 1000).toFixed(1)} | ${r.auroc.toFixed(3)} | ${r.aupro.toFixed(3)} |`),
];
if (runs.length >= 2) {
  const [a, b] = [runs[0]!, runs[runs.length - 1]!];
  lines.push('', `slide ${(b.size * b.size / (a.size * a.size)).toFixed(1)}× larger → peak RSS ×${(b.rssMiB / a.rssMiB).toFixed(2)} (${a.rssMiB.toFixed(0)} → ${b.rssMiB.toFixed(0)} MiB); limit 1536 MiB`);
}
console.log(lines.join('\n'));
