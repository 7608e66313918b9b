/**
 * npm run bench:read:tiles — the read stage of tile-mode analysis alone: every batch of a slide's
 * tile plan read with `readRange` (pipeline/batch.ts), as `lamina analyze` reads it, in fresh
 * processes, one per configuration, figures side by side: wall time per batch, CPU time per tile,
 * stored (file) tiles decoded per analysis tile, peak RSS, and a hash of all tile pixels, which must
 * be equal across configurations.
 *
 *   npm run bench:read:tiles -- --slide s.tiff                  # this checkout, 1 and all cores
 *   npm run bench:read:tiles -- --slide s.tiff --old /tmp/old   # first another checkout (same API)
 *   npm run bench:read:tiles -- --slide s.tiff --parts 1,4,16 --repeat 3
 *
 * `--old DIR` is a checkout of an earlier commit (`git archive <rev> src pipelines kernels
 * package.json | tar -x -C DIR`, inside this repository or with a node_modules link), run the way that
 * commit ran: its default reads per batch and libuv's default pool (4 threads). This checkout runs
 * with each `--parts` (default 1 and the cores) and UV_THREADPOOL_SIZE as bin/lamina.js sets it (the
 * larger of 4 and the cores). The slide: any slide; e.g.
 * `lamina synth --width 16384 --height 16384 --anomalies 24 --seed 7 --out s.tiff`.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Result {
  tiles: number; batches: number; parts: number; pool: number;
  seconds: number; cpuSeconds: number; storedDecoded: number; storedArea: number; tileArea: number;
  peakRssMb: number; hash: string; block: string;
}

/** Child: read every batch of the plan with `root`'s code; print one JSON line. */
async function child(root: string, slidePath: string, batchSize: number, parts: number | null): Promise<void> {
  const load = (p: string) => import(pathToFileURL(join(root, p)).href);
  const { openSlide } = await load('src/readers/registry.ts');
  const { planAnalysis } = await load('src/pipeline/plan.ts');
  const { quietContext } = await load('src/pipeline/stage.ts');
  const { parseAnalysisParams } = await load('pipelines/anomaly.ts');
  const batch = await load('src/pipeline/batch.ts');
  const slide = await openSlide(slidePath);
  const { plan } = await planAnalysis({ slide }, parseAnalysisParams({ model: 'untrained-test-tiny' }), quietContext());
  const level = slide.levels[plan.levelIndex];
  const sw = level.tileWidth || 1, sh = level.tileHeight || 1;
  let storedDecoded = 0, storedArea = 0;
  const readRegion = slide.readRegion.bind(slide);
  // Count the stored tiles each region read spans (each is decoded once per read with cache off).
  slide.readRegion = (x0: number, y0: number, l: number, w: number, h: number, o: unknown) => {
    const x = Math.round(x0 / level.downsample), y = Math.round(y0 / level.downsample);
    const n = (Math.floor((x + w - 1) / sw) - Math.floor(x / sw) + 1) * (Math.floor((y + h - 1) / sh) - Math.floor(y / sh) + 1);
    storedDecoded += n;
    storedArea += n * sw * sh;
    return readRegion(x0, y0, l, w, h, o);
  };
  const usedParts: number = parts ?? batch.readParts();
  await batch.readRange(slide, plan, plan.tiles.slice(0, 8), undefined, usedParts); // warm-up: codec load
  storedDecoded = 0; storedArea = 0;
  // Order-free: the plan's tile order may differ between checkouts, the pixels at each place may not.
  const perTile: string[] = [];
  let seconds = 0;
  const c0 = process.cpuUsage();
  let hashCpu = 0;
  let batches = 0;
  for (let s = 0; s < plan.tiles.length; s += batchSize, batches++) {
    const t0 = performance.now();
    const images = await batch.readRange(slide, plan, plan.tiles.slice(s, s + batchSize), undefined, usedParts);
    seconds += (performance.now() - t0) / 1e3;
    const h0 = process.cpuUsage();
    images.forEach((im: { data: Buffer }, i: number) => {
      const t = plan.tiles[s + i];
      perTile.push(`${t.x},${t.y}:${createHash('sha256').update(im.data).digest('hex')}`);
    });
    const h = process.cpuUsage(h0);
    hashCpu += (h.user + h.system) / 1e6;
  }
  const cpu = process.cpuUsage(c0);
  await slide.close();
  const result: Result = {
    tiles: plan.tiles.length, batches, parts: usedParts, pool: Number(process.env.UV_THREADPOOL_SIZE || 4),
    seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 - hashCpu, storedDecoded, storedArea,
    tileArea: plan.tiles.length * plan.readSizePx * plan.readSizePx, peakRssMb: process.resourceUsage().maxRSS / 1024,
    hash: createHash('sha256').update(perTile.sort().join('\n')).digest('hex').slice(0, 16), block: `${plan.block.cols}x${plan.block.rows}`,
  };
  console.log(JSON.stringify(result));
}

interface Config { label: string; root: string; parts: number | null; pool: string | undefined }

function runChild(c: Config, slide: string, batchSize: number): Result {
  const env = { ...process.env };
  delete env.LAMINA_READ_PARTS;
  if (c.pool === undefined) delete env.UV_THREADPOOL_SIZE; else env.UV_THREADPOOL_SIZE = c.pool;
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', c.root, '--slide', slide, '--batch', String(batchSize)];
  if (c.parts !== null) args.push('--parts', String(c.parts));
  const r = spawnSync(process.execPath, args, { cwd: repo, env, encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) throw new Error(`${c.label}: child failed (${r.status}):\n${r.stderr}`);
  return JSON.parse(line) as Result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' }, slide: { type: 'string' }, batch: { type: 'string', default: '256' },
      parts: { type: 'string' }, old: { type: 'string' }, repeat: { type: 'string', default: '1' },
    },
  });
  if (!values.slide) throw new Error('--slide PATH is required (e.g. a `lamina synth` slide)');
  const batchSize = Number(values.batch);
  if (values.child) return child(values.child, values.slide, batchSize, values.parts ? Number(values.parts) : null);

  const cores = availableParallelism();
  const pool = String(Math.max(4, cores)); // as bin/lamina.js
  const partsList = values.parts ? values.parts.split(',').map(Number) : [...new Set([1, cores])];
  const configs: Config[] = [];
  if (values.old) configs.push({ label: 'old (its default parts), pool 4', root: resolve(values.old), parts: null, pool: undefined });
  for (const p of partsList) configs.push({ label: `this, ${p} parts, pool ${pool}`, root: repo, parts: p, pool });
  const repeat = Number(values.repeat);
  console.log(`slide ${values.slide}, batches of ${batchSize}; ${cores} cores (${cpus()[0]?.model}), load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log('| configuration | block | parts | ms / batch (runs) | CPU ms / tile | stored px decoded / tile px | peak RSS MB | pixels sha256 |');
  console.log('|---|---|---|---|---|---|---|---|');
  const hashes = new Set<string>();
  for (const c of configs) {
    const runs = Array.from({ length: repeat }, () => runChild(c, values.slide!, batchSize));
    const r = runs[0]!;
    runs.forEach((x) => hashes.add(x.hash));
    const ms = runs.map((x) => ((x.seconds * 1e3) / x.batches).toFixed(0)).join(', ');
    const cpu = runs.map((x) => ((x.cpuSeconds * 1e3) / x.tiles).toFixed(2)).join(', ');
    console.log(`| ${c.label} | ${r.block} | ${r.parts} | ${ms} | ${cpu} | ${(r.storedArea / r.tileArea).toFixed(2)} | ${Math.max(...runs.map((x) => x.peakRssMb)).toFixed(0)} | ${r.hash} |`);
  }
  if (hashes.size > 1) {
    console.error(`pixels differ between configurations: ${[...hashes].join(', ')}`);
    process.exitCode = 1;
  }
}

await main();
