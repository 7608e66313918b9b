/**
 * npm run bench:encoder — tiles/s of ViT encoders on this machine's CPU with ONNX Runtime's CPU EP:
 * the built-in UNTRAINED ViT-S/16 and a ViT-B/16-shaped model at 224 px, batch 16 and 64. Peers in
 * the same run: the same weights as standard-opset attention (MatMul/Softmax, no contrib op), and
 * PyTorch on the CPU (F.scaled_dot_product_attention) when a Python with torch is given.
 *
 *   npm run bench:encoder
 *   npm run bench:encoder -- --models untrained-vit-s16 --batches 16 --threads 2 --repeats 2 \
 *     --python /tmp/h-venv/bin/python
 *
 * Before timing (llm.c's order): ViT-S is checked against the TypeScript reference forward pass
 * (vit-reference.ts) on one tile, every model's fused graph against its unfused twin, and the
 * PyTorch peer against ORT, each by the worst per-embedding cosine.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { resolveModel } from '../src/encoder/model-store.ts';
import { buildVitOnnx } from '../src/encoder/onnx-vit-builder.ts';
import { readVitOnnx } from '../src/encoder/onnx-weights.ts';
import { OrtEncoder } from '../src/encoder/ort-encoder.ts';
import { writeSafetensors } from '../src/encoder/safetensors.ts';
import { vitReferenceForward } from '../src/encoder/vit-reference.ts';
import { SeededRandom } from '../src/encoder/vit-random.ts';
import { worstRowCosine } from '../src/util/row-cosine.ts';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'untrained-vit-s16,untrained-vit-b16' },
    batches: { type: 'string', default: '16,64' },
    threads: { type: 'string', default: String(cpus().length) },
    repeats: { type: 'string', default: '1' },
    python: { type: 'string' },
  },
});
const threads = Number(values.threads);
const repeats = Number(values.repeats);
const batches = values.batches!.split(',').map(Number);

/** Mean tiles/s over `repeats` timed runs of `batch` tiles after one warm-up run. */
async function time(run: (pixels: Float32Array, n: number) => Promise<unknown>, size: number, batch: number): Promise<number> {
  const tile = new SeededRandom(11).fillUniform(new Float32Array(3 * size * size), 1);
  const pixels = new Float32Array(batch * tile.length);
  for (let i = 0; i < batch; i++) pixels.set(tile, i * tile.length);
  await run(pixels.subarray(0, Math.min(batch, 8) * tile.length), Math.min(batch, 8));
  let seconds = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await run(pixels, batch);
    seconds += (performance.now() - t0) / 1000;
  }
  return (batch * repeats) / seconds;
}

const rows: string[] = [];
console.log(`# bench:encoder — ${new Date().toISOString()}`);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average ${loadavg().map((v) => v.toFixed(1)).join(' ')}; ` +
  `onnxruntime-node ${ort.env.versions.common}; threads ${threads}`);
for (const name of values.models!.split(',')) {
  const t0 = performance.now();
  const loc = await resolveModel(name);
  console.log(`\n${name} (${loc.manifest.trained ? 'trained' : 'UNTRAINED'}): ready in ${((performance.now() - t0) / 1000).toFixed(1)} s at ${loc.onnxPath}`);
  const size = loc.manifest.inputSize;
  const d = loc.manifest.embeddingDim;
  const { config, weights } = await readVitOnnx(loc.onnxPath);
  const fused = await OrtEncoder.create(loc, { threads, maxBatch: 1024 });
  const unfusedSession = await ort.InferenceSession.create(buildVitOnnx(config, weights, { attention: 'unfused', weightType: 'float16' }),
    { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const runUnfused = async (pixels: Float32Array, n: number) =>
    (await unfusedSession.run({ pixels: new ort.Tensor('float32', pixels, [n, 3, size, size]) })).embedding!.data as Float32Array;

  const check = new SeededRandom(5).fillUniform(new Float32Array(2 * 3 * size * size), 1);
  const ortOut = (await fused.embed(check, 2)).embeddings;
  console.log(`check: fused vs unfused ORT graph, worst cosine ${worstRowCosine(ortOut, await runUnfused(check, 2), d).toFixed(6)}`);
  if (config.dim <= 384) {
    const ref = vitReferenceForward(config, weights, check.subarray(0, 3 * size * size), 1).embeddings;
    console.log(`check: ORT vs TypeScript reference (1 tile), cosine ${worstRowCosine(ortOut.subarray(0, d), ref, d).toFixed(6)}`);
  }
  let torch: { min_cosine_vs_ort: number; torch: string; runs: Array<{ batch: number; tiles_per_s: number }> } | null = null;
  if (values.python) {
    const dir = mkdtempSync(join(tmpdir(), 'lamina-bench-enc-'));
    try {
      await writeSafetensors(join(dir, 'w.safetensors'), weights);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
      writeFileSync(join(dir, 'pixels.f32'), new Uint8Array(check.buffer));
      writeFileSync(join(dir, 'ort.f32'), new Uint8Array(ortOut.buffer));
      const r = spawnSync(values.python, [join(here, 'encoder_torch_peer.py'), join(dir, 'w.safetensors'), join(dir, 'config.json'),
        join(dir, 'pixels.f32'), join(dir, 'ort.f32'), batches.join(','), String(threads), String(repeats)], { encoding: 'utf8', maxBuffer: 1 << 20 });
      if (r.status !== 0) console.log(`PyTorch peer failed: ${r.stderr.trim().split('\n').pop()}`);
      else {
        torch = JSON.parse(r.stdout.trim().split('\n').pop()!);
        console.log(`check: PyTorch ${torch!.torch} vs ORT, worst cosine ${torch!.min_cosine_vs_ort.toFixed(6)}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  for (const batch of batches) {
    const fusedTps = await time((p, n) => fused.embed(p, n), size, batch);
    const unfusedTps = await time(runUnfused, size, batch);
    const torchTps = torch?.runs.find((r) => r.batch === batch)?.tiles_per_s;
    const row = `| ${name} | ${size} | ${batch} | ${fusedTps.toFixed(2)} | ${unfusedTps.toFixed(2)} | ${torchTps ? torchTps.toFixed(2) : '—'} |`;
    rows.push(row);
    console.log(row);
  }
  await fused.close();
  await unfusedSession.release();
}
console.log('\n| model | px | batch | ORT CPU, fused MultiHeadAttention (tiles/s) | ORT CPU, unfused attention | PyTorch CPU (SDPA) |');
console.log('|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log(`load average after: ${loadavg().map((v) => v.toFixed(1)).join(' ')}`);
