/**
 * npm run bench:synth [-- SIZE …] — time, CPU and peak RSS of `synthesizeSlide` for square slides
 * (default 20000), side by side with libvips (through sharp) writing a pyramidal tiled JPEG BigTIFF
 * of the same size from Gaussian noise: the same container, codec and tile size, no tissue model.
 * Each run is a fresh child process, so peak RSS is that run's alone. Checks the output opens
 * (libvips page count, dimensions) before reporting.
 *
 * Options: --workers N (default 2), --keep (leave the files in tmp/bench-synth/), --no-peer.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);

if (process.argv[2] === '--child') {
  const [, , , kind, size, out, workers] = process.argv;
  const n = Number(size);
  const started = performance.now();
  if (kind === 'lamina') {
    const { synthesizeSlide } = await import('../src/synth/index.ts');
    await synthesizeSlide({ width: n, height: n, out, anomalies: 12, seed: 1, workers: Number(workers) });
  } else {
    const { default: sharp } = await import('sharp');
    await sharp({ create: { width: n, height: n, channels: 3, background: { r: 230, g: 160, b: 200 }, noise: { type: 'gaussian', mean: 170, sigma: 30 } }, limitInputPixels: false })
      .tiff({ tile: true, tileWidth: 512, tileHeight: 512, pyramid: true, compression: 'jpeg', quality: 85, bigtiff: true })
      .toFile(out);
  }
  const { default: sharp } = await import('sharp');
  const meta = await sharp(out, { limitInputPixels: false }).metadata();
  if (meta.width !== n || meta.height !== n || !meta.pages || meta.pages < 2) throw new Error(`bad output: ${JSON.stringify(meta)}`);
  const cpu = process.cpuUsage();
  console.log(JSON.stringify({
    seconds: (performance.now() - started) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxRssMb: process.resourceUsage().maxRSS / 1024, bytes: statSync(out).size, levels: meta.pages,
  }));
  process.exit(0);
}

const args = process.argv.slice(2);
const workers = args.includes('--workers') ? Number(args[args.indexOf('--workers') + 1]) : 2;
const sizes = args.filter((a, i) => /^\d+$/.test(a) && args[i - 1] !== '--workers').map(Number);
const dir = join(fileURLToPath(new URL('..', import.meta.url)), 'tmp', 'bench-synth');
mkdirSync(dir, { recursive: true });

console.log(`bench:synth — ${new Date().toISOString()} — ${cpus()[0]?.model ?? 'cpu'} × ${availableParallelism()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
console.log('size        writer                 wall s   CPU s   MPix/s(wall)  peak RSS MB   file MiB  levels');
for (const n of sizes.length ? sizes : [20000]) {
  for (const kind of args.includes('--no-peer') ? ['lamina'] : ['lamina', 'libvips']) {
    const out = join(dir, `${kind}-${n}.tiff`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', self, '--child', kind, String(n), out, String(workers)], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) { console.log(`${n} ${kind}: failed\n${r.stderr}`); continue; }
    const m = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const label = kind === 'lamina' ? `lamina synth (${workers} workers)` : 'libvips tiffsave (noise)';
    console.log(`${`${n}²`.padEnd(11)} ${label.padEnd(22)} ${m.seconds.toFixed(1).padStart(6)} ${m.cpuSeconds.toFixed(1).padStart(7)} `
      + `${((n * n) / 1e6 / m.seconds).toFixed(1).padStart(13)} ${m.maxRssMb.toFixed(0).padStart(12)} ${(m.bytes / 2 ** 20).toFixed(0).padStart(10)} ${String(m.levels).padStart(7)}`);
    if (!args.includes('--keep')) for (const f of [out, out.replace('.tiff', '.mask.png'), out.replace('.tiff', '.anomalies.json')]) rmSync(f, { force: true });
  }
}
