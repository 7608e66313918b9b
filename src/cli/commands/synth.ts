import type { Command } from '../main.ts';
import { numberFlag, parseFlags } from '../args.ts';
import { InvalidParameterError } from '../../errors.ts';
import type { AnomalyKind } from '../../synth/anomalies.ts';

const usage = 'lamina synth --width W --height H --out slide.tiff [--anomalies N] [--mask mask.png] [--sidecar anomalies.json] '
  + '[--seed S] [--background procedural|real] [--kinds k1,k2,…] [--min-anomaly-size PX] [--max-anomaly-size PX] '
  + '[--tile-size 256|512] [--level-factor 2|4] [--quality Q] [--mpp M] [--mask-downsample D] [--workers N] [--json]';

export const command: Command = {
  summary: 'Write a synthetic pyramidal BigTIFF slide with planted anomalies and its true mask',
  usage,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, {
      width: { type: 'string' }, height: { type: 'string' }, out: { type: 'string', short: 'o' },
      anomalies: { type: 'string' }, mask: { type: 'string' }, sidecar: { type: 'string' }, seed: { type: 'string' },
      background: { type: 'string' }, kinds: { type: 'string' },
      'min-anomaly-size': { type: 'string' }, 'max-anomaly-size': { type: 'string' },
      'tile-size': { type: 'string' }, 'level-factor': { type: 'string' }, quality: { type: 'string' }, mpp: { type: 'string' },
      'mask-downsample': { type: 'string' }, workers: { type: 'string' }, json: { type: 'boolean' },
    }, usage);
    if (positionals.length > 0) throw new InvalidParameterError(`Unexpected argument ${JSON.stringify(positionals[0])}\nUsage: ${usage}`);
    if (!values.out) throw new InvalidParameterError(`Missing required option --out\nUsage: ${usage}`);
    const opt = (name: string, raw: string | undefined, min: number, max: number, fraction = false) =>
      raw === undefined ? undefined : numberFlag(name, raw, undefined, min, max, fraction);
    const background = values.background;
    if (background !== undefined && background !== 'procedural' && background !== 'real') {
      throw new InvalidParameterError(`Expected "procedural" or "real" for --background but received ${JSON.stringify(background)}`);
    }
    const { synthesizeSlide } = await import('../../synth/index.ts');
    const started = performance.now();
    let lastShown = 0;
    const tty = process.stderr.isTTY && !values.json;
    const result = await synthesizeSlide({
      width: numberFlag('width', values.width, undefined, 64, 1_000_000),
      height: numberFlag('height', values.height, undefined, 64, 1_000_000),
      out: values.out,
      anomalies: opt('anomalies', values.anomalies, 0, 1000),
      maskPath: values.mask,
      sidecarPath: values.sidecar,
      seed: opt('seed', values.seed, 0, 2 ** 31 - 1),
      background,
      kinds: values.kinds?.split(',').map((k) => k.trim()) as AnomalyKind[] | undefined,
      minAnomalySize: opt('min-anomaly-size', values['min-anomaly-size'], 16, 100_000),
      maxAnomalySize: opt('max-anomaly-size', values['max-anomaly-size'], 16, 100_000),
      tileSize: opt('tile-size', values['tile-size'], 256, 512),
      levelFactor: opt('level-factor', values['level-factor'], 2, 4),
      quality: opt('quality', values.quality, 1, 100),
      mpp: opt('mpp', values.mpp, 0.05, 100, true),
      maskDownsample: opt('mask-downsample', values['mask-downsample'], 1, 128),
      workers: opt('workers', values.workers, 0, 64),
      onProgress: tty ? (done, total) => {
        const now = performance.now();
        if (now - lastShown < 250 && done < total) return;
        lastShown = now;
        const rate = done / ((now - started) / 1000);
        process.stderr.write(`\rsynth: ${done}/${total} level-0 tiles, ${rate.toFixed(0)} tiles/s, ETA ${((total - done) / rate).toFixed(0)} s   `);
      } : undefined,
    });
    if (tty) process.stderr.write('\n');
    const seconds = (performance.now() - started) / 1000;
    if (values.json) {
      console.log(JSON.stringify({ ...result, seconds }, null, 2));
      return 0;
    }
    console.log(`${result.path}: ${result.width} × ${result.height} px, ${result.levels.length} levels `
      + `(${result.levels.map((l) => `${l.width}×${l.height}`).join(', ')}), ${result.tileSize}-px JPEG tiles, `
      + `${(result.bytes / 2 ** 20).toFixed(1)} MiB, ${seconds.toFixed(1)} s`);
    console.log(`mask: ${result.maskPath} (${result.maskWidth} × ${result.maskHeight}, 1 px = ${result.maskDownsample} level-0 px); `
      + `anomalies: ${result.sidecarPath}`);
    for (const a of result.anomalies) {
      console.log(`  #${a.id} ${a.kind.padEnd(18)} x=${a.x} y=${a.y} ${a.width}×${a.height}${a.source ? `  from ${a.source}` : ''}`);
    }
    return 0;
  },
};
