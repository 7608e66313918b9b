/**
 * `npm run bench:analyze`: tiles/s, peak RSS and time by stage of `lamina analyze` on synthetic
 * slides of two sizes (default 32768² ≈ 1.07 GP and 65536² ≈ 4.29 GP), side by side, so one sees
 * that RSS does not grow with the slide: each row after the first gives its tiles and peak RSS as a
 * ratio of the first (smallest) row's. Each run is its own process under GNU time (peak RSS = max
 * resident set of the process). The slides are made once with `lamina synth` and cached in
 * /tmp/lamina-bench (LAMINA_BENCH_DIR); the first run takes minutes.
 *
 * Correctness first: each result is checked (tiles.csv rows = tissue tiles, result.json complete)
 * and scored against the slide's true anomalies (AUROC/AUPRO) before figures are printed.
 *
 * Model: the tiny built-in encoder (untrained-test-tiny, 64 px input) by default, since a 224-px
 * ViT on two CPU cores over ~30k tiles takes hours; `--model` (or LAMINA_BENCH_MODEL) overrides,
 * e.g. the trained default `lamina-vit-tiny-dino`.
 * The child runs with MALLOC_ARENA_MAX=2, as in the Docker image (set MALLOC_ARENA_MAX in the
 * bench's own environment to measure another value).
 * Usage: npm run bench:analyze [-- --sizes 32768,65536] [--model NAME]
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesizeSlide } from '../src/synth/index.ts';
import { evaluateSynth } from './synth-eval.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cacheDir = process.env.LAMINA_BENCH_DIR ?? '/tmp/lamina-bench';
const flag = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const model = flag('--model') ?? process.env.LAMINA_BENCH_MODEL ?? 'untrained-test-tiny';
const sizes = (flag('--sizes') ?? '32768,65536').split(',').map(Number).sort((a, b) => a - b);
if (sizes.some((s) => !Number.isInteger(s) || s < 1024)) throw new Error(`--sizes: expected slide edges in pixels (>= 1024), got ${flag('--sizes')}`);

async function ensureSlide(size: number): Promise<string> {
  const path = join(cacheDir, `synth-${size === 32768 ? '32k' : size === 65536 ? '64k' : size}.tiff`);
  if (existsSync(path) && existsSync(path.replace(/\.tiff$/, '.anomalies.json'))) return path;
  await mkdir(cacheDir, { recursive: true });
  console.error(`making ${path} (${size}×${size}) with lamina synth — minutes`);
  await synthesizeSlide({ width: size, height: size, out: path, anomalies: size >= 65536 ? 16 : 12, seed: size >= 65536 ? 22 : 21 });
  return path;
}

interface Run { size: number; slideBytes: number; tiles: number; seconds: number; rssMiB: number; timings: Record<string, number>; auroc: number; aupro: number; load: number }

function runAnalyze(slide: string, out: string): Promise<{ rssKiB: number; stderr: string; code: number | null }> {
  return new Promise((resolve) => {
    // glibc's malloc arenas as the Docker image sets them (MALLOC_ARENA_MAX=2), so the bench measures what ships
    const env = { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' };
    const child = spawn('/usr/bin/time', ['-f', 'LAMINA_MAXRSS_KIB=%M', process.execPath, join(root, 'bin/lamina.js'), 'analyze', slide, '--out', out, '--model', model], { cwd: root, env });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdout.on('data', () => {});
    child.on('close', (code) => resolve({ code, stderr, rssKiB: Number(/LAMINA_MAXRSS_KIB=(\d+)/.exec(stderr)?.[1] ?? NaN) }));
  });
}

const s = (ms: number | undefined) => ((ms ?? NaN) / 1000).toFixed(1);
/** One table row; ratios are against the first (smallest) slide's run. */
const row = (r: Run, base: Run) => `| ${[
  `${r.size}×${r.size}`, (r.size * r.size / 1e9).toFixed(2), (r.slideBytes / 1e6).toFixed(0), r.tiles, (r.tiles / base.tiles).toFixed(2), r.seconds.toFixed(1),
  (r.tiles / (r.timings.encode! / 1000)).toFixed(1), (r.tiles / r.seconds).toFixed(1), r.rssMiB.toFixed(0), (r.rssMiB / base.rssMiB).toFixed(2),
  s(r.timings.open), s(r.timings.tissue), s(r.timings.plan), `${s(r.timings.encode)} (${s(r.timings.read)} + ${s(r.timings.embed)})`, s(r.timings.score), s(r.timings.aggregate),
  r.load.toFixed(1), r.auroc.toFixed(3), r.aupro.toFixed(3),
].join(' | ')} |`;

// Rows print as each run ends (a run of a 224-px model on a large slide takes long).
console.log([
  `command: npm run bench:analyze -- --sizes ${sizes.join(',')} --model ${model} (lamina analyze, defaults otherwise: 224 px tiles at level 0, in-slide robust Mahalanobis)`,
  `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; date ${new Date().toISOString().slice(0, 10)}; MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '2'}`,
  '',
  '| slide (level 0) | gigapixels | file MB | tissue tiles | tiles × | wall s | tiles/s (encode) | tiles/s (end to end) | peak RSS MiB | peak RSS × | open+checksum s | tissue s | plan s | encode s (read + embed) | score s | aggregate s | load avg | AUROC | AUPRO |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
].join('\n'));

const runs: Run[] = [];
for (const size of sizes) {
  const slide = await ensureSlide(size);
  const out = join(cacheDir, `analyze-${size}-${model}`);
  await rm(out, { recursive: true, force: true });
  const started = performance.now();
  // the machine may be shared: sample the 1-minute load average through the run
  const loads: number[] = [loadavg()[0]!];
  const sampler = setInterval(() => loads.push(loadavg()[0]!), 10_000);
  const { rssKiB, stderr, code } = await runAnalyze(slide, out).finally(() => clearInterval(sampler));
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`analyze failed on ${slide}:\n${stderr}`);
  const result = JSON.parse(await readFile(join(out, 'result.json'), 'utf8'));
  const rows = (await readFile(join(out, 'tiles.csv'), 'utf8')).trim().split('\n').length - 1;
  if (rows !== result.tiles.analysed) throw new Error(`tiles.csv has ${rows} rows, result.json says ${result.tiles.analysed}`);
  const evaluation = await evaluateSynth(out, slide.replace(/\.tiff$/, '.anomalies.json'));
  const { size: slideBytes } = await import('node:fs').then((fs) => fs.statSync(slide));
  runs.push({ size, slideBytes, tiles: rows, seconds, rssMiB: rssKiB / 1024, timings: result.timings, auroc: evaluation.auroc, aupro: evaluation.aupro, load: loads.reduce((a, b) => a + b, 0) / loads.length });
  console.log(row(runs[runs.length - 1]!, runs[0]!));
}

if (runs.length >= 2) {
  const [a, b] = [runs[0]!, runs[runs.length - 1]!];
  console.log(`\nslide ${(b.size * b.size / (a.size * a.size)).toFixed(1)}× larger, ${(b.tiles / a.tiles).toFixed(1)}× the tiles → peak RSS ×${(b.rssMiB / a.rssMiB).toFixed(2)} (${a.rssMiB.toFixed(0)} → ${b.rssMiB.toFixed(0)} MiB); limit 1536 MiB`);
}
