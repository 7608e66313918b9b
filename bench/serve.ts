/**
 * npm run bench:serve — the HTTP service under load on loopback:
 *  1. Upload: a large file streamed to `POST /api/slides` (a sparse file of zeros: it is hashed and
 *     written to disk, then fails the format check with 415 and is deleted), at two sizes; the
 *     server's peak RSS (VmHWM) must not grow with the file.
 *  2. Deep Zoom: every tile of the top levels of the real sample slide requested by C concurrent
 *     clients, cold (rendered: read + resize + JPEG) and warm (from the LRU cache); tiles/s and
 *     p50/p99 latency. Peer: OpenSlide's DeepZoomGenerator (python3-openslide) rendering the same
 *     tiles in one process, no HTTP — what a Python tile server does per request.
 * The server runs as a child process (`lamina serve`), so its memory is measured alone.
 * Usage: npm run bench:serve [-- --big-gb 3 --clients 1,8,32]
 */
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { dziGeometry } from '../src/api/deep-zoom.ts';

const { values } = parseArgs({ options: { 'big-gb': { type: 'string', default: '3' }, clients: { type: 'string', default: '1,8,32' } } });
const SLIDE = resolve(import.meta.dirname, '..', '..', 'shared', 'slides', 'CMU-1-Small-Region.svs');
const PYTHON = '/usr/bin/python3';
const bigBytes = Math.round(Number(values['big-gb']) * 1024 ** 3);
if (!(bigBytes > 0 && bigBytes <= 4 * 1024 ** 3)) throw new Error('--big-gb must be in (0, 4] (disk space)');

const dataDir = await mkdtemp(join(tmpdir(), 'lamina-bench-serve-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const server = spawn(process.execPath, ['bin/lamina.js', 'serve', '--port', String(port), '--host', '127.0.0.1'], {
  env: { ...process.env, LAMINA_DATA_DIR: dataDir, LAMINA_MAX_UPLOAD_BYTES: String(8 * 1024 ** 3), LAMINA_UPLOADS_PER_MINUTE: '0', LAMINA_QUEUE_PREFIX: `bench-${port}`, LOG_LEVEL: 'warn' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const base = `http://127.0.0.1:${port}`;
const peakRss = async () => {
  const status = await readFile(`/proc/${server.pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
};
const mb = (b: number) => `${(b / 1024 ** 2).toFixed(0)} MB`;

try {
  for (let i = 0; ; i++) {
    if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) break;
    if (i > 200) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log(`bench:serve — ${cpus().length} × ${cpus()[0]!.model}, Node ${process.version}, ${new Date().toISOString()}`);
  console.log(`server: lamina serve (child process ${server.pid}), data in ${dataDir}\n`);

  // 1. Uploads of growing size: throughput and the server's peak RSS after each.
  console.log('Upload (raw body, streamed to disk with SHA-256, then the format check rejects it):');
  console.log('  size        status  seconds   MB/s   server peak RSS');
  for (const size of [256 * 1024 ** 2, bigBytes]) {
    const file = join(dataDir, `sparse-${size}.bin`);
    const h = await open(file, 'w');
    await h.truncate(size); // sparse: no disk used by the source
    await h.close();
    const t0 = performance.now();
    const r = await fetch(`${base}/api/slides?filename=big.svs`, {
      method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: Readable.toWeb(createReadStream(file, { highWaterMark: 1 << 20 })) as ReadableStream, duplex: 'half',
    } as RequestInit);
    await r.arrayBuffer();
    const s = (performance.now() - t0) / 1000;
    await rm(file);
    console.log(`  ${mb(size).padStart(8)}    ${r.status}     ${s.toFixed(2).padStart(6)}  ${(size / 1024 ** 2 / s).toFixed(0).padStart(5)}   ${mb(await peakRss())}`);
  }

  // 2. Deep Zoom tiles.
  const svs = await readFile(SLIDE);
  const up = await (await fetch(`${base}/api/slides?filename=CMU-1-Small-Region.svs`, { method: 'POST', body: svs })).json();
  const g = dziGeometry(up.slide.width, up.slide.height);
  const tiles: string[] = [];
  for (let level = g.maxLevel; level >= g.maxLevel - 4; level--) {
    const scale = 2 ** (g.maxLevel - level);
    const cols = Math.ceil(Math.ceil(g.width / scale) / g.tileSize), rows = Math.ceil(Math.ceil(g.height / scale) / g.tileSize);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) tiles.push(`${level}/${c}_${r}`);
  }
  // Correctness once before timing: a tile decodes to its expected size.
  const probe = await sharp(Buffer.from(await (await fetch(`${base}/api/slides/${up.slide.id}/dzi_files/${g.maxLevel}/1_1.jpeg`)).arrayBuffer())).metadata();
  if (probe.width !== 256 || probe.height !== 256) throw new Error(`tile 1_1 is ${probe.width}×${probe.height}, expected 256×256`);

  async function run(clients: number, list: string[]): Promise<{ perS: number; p50: number; p99: number }> {
    const lat: number[] = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: clients }, async () => {
      while (next < list.length) {
        const t = list[next++]!;
        const s = performance.now();
        const r = await fetch(`${base}/api/slides/${up.slide.id}/dzi_files/${t}.jpeg`);
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`${t}: ${r.status}`);
        lat.push(performance.now() - s);
      }
    }));
    const wall = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    return { perS: list.length / wall, p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))]! };
  }

  console.log(`\nDeep Zoom: ${tiles.length} tiles (levels ${g.maxLevel}..${g.maxLevel - 4}) of ${up.slide.name}, ${up.slide.width}×${up.slide.height}, JPEG q80`);
  console.log('  clients   cold tiles/s   p50 ms   p99 ms   |   warm tiles/s   p50 ms   p99 ms');
  for (const c of String(values.clients).split(',').map(Number)) {
    // Cold: the server's tile cache is emptied by deleting and re-uploading the slide (same id).
    await fetch(`${base}/api/slides/${up.slide.id}`, { method: 'DELETE' });
    await fetch(`${base}/api/slides?filename=CMU-1-Small-Region.svs`, { method: 'POST', body: svs });
    const cold = await run(c, tiles);
    const warm = await run(c, tiles);
    console.log(`  ${String(c).padStart(7)}   ${cold.perS.toFixed(0).padStart(12)}   ${cold.p50.toFixed(1).padStart(6)}   ${cold.p99.toFixed(1).padStart(6)}   |   ${warm.perS.toFixed(0).padStart(12)}   ${warm.p50.toFixed(1).padStart(6)}   ${warm.p99.toFixed(1).padStart(6)}`);
  }
  console.log(`  server peak RSS after the tile runs: ${mb(await peakRss())}`);

  // Peer: OpenSlide's DeepZoomGenerator, same tiles, one process, no HTTP.
  const py = spawnSync(PYTHON, ['-c', `
import io, sys, time, openslide
from openslide.deepzoom import DeepZoomGenerator
dz = DeepZoomGenerator(openslide.OpenSlide(sys.argv[1]), tile_size=254, overlap=1, limit_bounds=False)
tiles = [t.split('/') for t in sys.argv[2].split(',')]
lat = []
t0 = time.perf_counter()
for level, name in tiles:
    c, r = map(int, name.split('_'))
    s = time.perf_counter()
    buf = io.BytesIO(); dz.get_tile(int(level), (c, r)).save(buf, 'jpeg', quality=80)
    lat.append((time.perf_counter() - s) * 1000)
wall = time.perf_counter() - t0
lat.sort()
print(f"{len(tiles)/wall:.0f} {lat[len(lat)//2]:.1f} {lat[min(len(lat)-1, int(len(lat)*0.99))]:.1f}")
`, SLIDE, tiles.join(',')], { encoding: 'utf8' });
  if (py.status === 0) {
    const [perS, p50, p99] = py.stdout.trim().split(' ');
    console.log(`  peer: OpenSlide DeepZoomGenerator (python3-openslide, 1 process, no HTTP): ${perS} tiles/s, p50 ${p50} ms, p99 ${p99} ms`);
  } else {
    console.log(`  peer: python3-openslide not available (${(py.stderr || '').trim().split('\n').pop()})`);
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  await rm(dataDir, { recursive: true, force: true });
  // The queues' metadata keys the server created under its own prefix.
  const { connectRedis } = await import('../src/queue/connection.ts');
  const redis = connectRedis(process.env.REDIS_URL || undefined, { maxRetriesPerRequest: 1 });
  const keys = await redis.keys(`bench-${port}:*`).catch(() => [] as string[]);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
}
