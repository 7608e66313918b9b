/** Child process for memory tests: makes one slide, prints {maxRssMb, seconds} as JSON. Usage: make-slide-child.ts W H OUT [WORKERS] */
import { synthesizeSlide } from '../../src/synth/index.ts';

const [width, height, out, workers] = process.argv.slice(2);
const started = performance.now();
await synthesizeSlide({ width: Number(width), height: Number(height), out, anomalies: 6, seed: 3, workers: Number(workers ?? 2) });
console.log(JSON.stringify({ maxRssMb: process.resourceUsage().maxRSS / 1024, seconds: (performance.now() - started) / 1000 }));
