/**
 * npm run bench:read:ndpi — random 512 × 512 level-0 reads on the real NDPI (beside OpenSlide's
 * read_region on the same coordinates, in the same run) and on the DICOM series (OpenSlide 3.4
 * has no DICOM reader: Lamina only). One core for both: sharp's libvips pool is set to 1 thread
 * and reads are sequential; OpenSlide's default 32 MiB tile cache and ours are the same size.
 * Each side runs in its own child process so peak RSS is its own. Correctness is checked once
 * against the committed OpenSlide reference before timing.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { cpus } from 'node:os';

const here = dirname(fileURLToPath(import.meta.url));
const slides = join(here, '..', '..', 'shared', 'slides');
const NDPI = join(slides, 'test3-DAPI-2-387.ndpi');
const DICOM = join(slides, 'CMU-1-Small-Region-dicom');
const READS = Number(process.env.READS ?? 200);
const SIZE = 512;

function coords(width: number, height: number, n: number, seed: number): Array<[number, number]> {
  let a = seed;
  const next = () => { a = (a * 1103515245 + 12345) % 2 ** 31; return a / 2 ** 31; };
  return Array.from({ length: n }, () => [Math.floor(next() * (width - SIZE)), Math.floor(next() * (height - SIZE))]);
}

async function worker(kind: string): Promise<void> {
  const sharp = (await import('sharp')).default;
  sharp.concurrency(1);
  const { TileCache } = await import('../src/io/tile-cache.ts');
  const { FileSource } = await import('../src/io/byte-source.ts');
  const cache = new TileCache(32 << 20);
  let slide;
  let intervals = () => 0;
  if (kind === 'ndpi') {
    const { openNdpi } = await import('../src/readers/ndpi/ndpi.ts');
    const s = await openNdpi(await FileSource.open(NDPI), cache);
    intervals = () => s.stats.intervalsDecoded;
    slide = s;
    // correctness once, before timing
    const { meanAbsDiff } = await import('../test/readers/dicom-test-utils.ts');
    const mad = await meanAbsDiff(await s.readRegion(1000, 2000, 0, 256, 256), join(here, '..', 'test', 'fixtures', 'ndpi', 'L0-x1000-y2000-256x256.png'));
    if (!mad.every((d) => d <= 2)) throw new Error(`NDPI region differs from OpenSlide: ${mad}`);
    cache.clear();
  } else {
    const { openDicomSeries } = await import('../src/readers/dicom/dicom.ts');
    const { readdirSync } = await import('node:fs');
    slide = await openDicomSeries(readdirSync(DICOM).map((f) => ({ path: join(DICOM, f) })), 'CMU-1-Small-Region-dicom', undefined, cache);
  }
  const list = coords(slide.dimensions.width, slide.dimensions.height, READS, 7);
  const before = intervals();
  const t0 = process.hrtime.bigint();
  for (const [x, y] of list) await slide.readRegion(x, y, 0, SIZE, SIZE);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({
    seconds, mpixPerS: (READS * SIZE * SIZE) / 1e6 / seconds, peakRssMB: process.resourceUsage().maxRSS / 1024,
    intervalsPerRead: (intervals() - before) / READS, levelIntervals: kind === 'ndpi' ? slide.levels[0]!.height / slide.levels[0]!.tileHeight : 0,
  }));
  await slide.close();
}

const OPENSLIDE = `
import json, resource, sys, time, openslide
path, size, coords = sys.argv[1], int(sys.argv[2]), json.loads(sys.stdin.read())
s = openslide.OpenSlide(path)
t = time.perf_counter()
for x, y in coords:
    s.read_region((x, y), 0, (size, size))
dt = time.perf_counter() - t
print(json.dumps({'seconds': dt, 'mpixPerS': len(coords) * size * size / 1e6 / dt, 'peakRssMB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

function run(cmd: string, args: string[], input?: string): Record<string, number> {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number>;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--worker') return worker(process.argv[3]!);
  const self = fileURLToPath(import.meta.url);
  // The machine is shared: alternate the readers for ROUNDS rounds and keep each one's median.
  const rounds = Number(process.env.ROUNDS ?? 3);
  const runs: Record<string, Array<Record<string, number>>> = { nd: [], os: [], dc: [] };
  for (let r = 0; r < rounds; r++) {
    runs.nd!.push(run(process.execPath, ['--import', 'tsx', self, '--worker', 'ndpi']));
    runs.os!.push(run('/usr/bin/python3', ['-c', OPENSLIDE, NDPI, String(SIZE)], JSON.stringify(coords(3968, 4864, READS, 7))));
    runs.dc!.push(run(process.execPath, ['--import', 'tsx', self, '--worker', 'dicom']));
  }
  const median = (xs: Array<Record<string, number>>) => [...xs].sort((a, b) => a.mpixPerS! - b.mpixPerS!)[Math.floor(xs.length / 2)]!;
  const nd = median(runs.nd!);
  const os = median(runs.os!);
  const dc = median(runs.dc!);
  const f = (v: number | undefined, d = 1) => (v ?? 0).toFixed(d);
  console.log(`bench:read:ndpi — ${READS} random ${SIZE} × ${SIZE} level-0 reads, one core, median of ${rounds} alternating rounds; ${cpus()[0]?.model ?? 'cpu'}; ${new Date().toISOString()}`);
  console.log('slide                        reader     MPix/s  peak RSS MB  intervals/read (level has)');
  console.log(`test3-DAPI-2-387.ndpi        lamina     ${f(nd.mpixPerS).padStart(6)}  ${f(nd.peakRssMB, 0).padStart(11)}  ${f(nd.intervalsPerRead)} (${nd.levelIntervals})`);
  console.log(`test3-DAPI-2-387.ndpi        openslide  ${f(os.mpixPerS).padStart(6)}  ${f(os.peakRssMB, 0).padStart(11)}`);
  console.log(`  ratio lamina/openslide: throughput ${(nd.mpixPerS! / os.mpixPerS!).toFixed(2)}×, peak RSS ${(nd.peakRssMB! / os.peakRssMB!).toFixed(2)}×`);
  console.log(`CMU-1-Small-Region-dicom/    lamina     ${f(dc.mpixPerS).padStart(6)}  ${f(dc.peakRssMB, 0).padStart(11)}  (OpenSlide 3.4: no DICOM)`);
}

await main();
