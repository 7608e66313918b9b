import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { parseAnalysisParams } from '../../pipelines/anomaly.ts';
import { analyzeSlide } from '../../src/pipeline/analyze.ts';
import { batchRanges, decodeBatchOutput, encodeBatchOutput, processBatch, type BatchOutput } from '../../src/pipeline/batch.ts';
import { finishAnalysis } from '../../src/pipeline/finish.ts';
import { planAnalysis } from '../../src/pipeline/plan.ts';
import { openEmbedder } from '../../src/pipeline/open-embedder.ts';
import { quietContext } from '../../src/pipeline/stage.ts';
import type { TileEmbedder } from '../../src/pipeline/embedder.ts';
import { checksumInput } from '../../src/pipeline/checksum.ts';
import { openSlide } from '../../src/readers/registry.ts';
import { writeBank } from '../../src/scoring/bank.ts';
import { resolveModel } from '../../src/encoder/model-store.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const SAMPLE = join(root, '../shared/slides/CMU-1-Small-Region.svs');
const MODEL = 'untrained-test-tiny';
let dir: string;
let embedder: TileEmbedder;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lamina-analyze-'));
  embedder = await openEmbedder(MODEL, 'cpu');
});
after(async () => {
  await embedder.close();
  await rm(dir, { recursive: true, force: true });
});

/** Runs the CLI; resolves with exit code and output. `onStderr` may act on progress lines. */
function cli(args: string[], onStderr?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin/lamina.js'), ...args], { cwd: root });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; onStderr?.(stderr, child); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function filesOf(out: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of (await readdir(out)).sort()) {
    let text = (await readFile(join(out, name))).toString('base64');
    if (name === 'result.json') {
      const result = JSON.parse(await readFile(join(out, name), 'utf8'));
      delete result.timings;
      text = JSON.stringify(result);
    }
    files[name] = text;
  }
  return files;
}

test('same slide and parameters twice → identical result files (timings aside)', async () => {
  const params = parseAnalysisParams({ model: MODEL });
  const a = await analyzeSlide(SAMPLE, params, quietContext(), { outDir: join(dir, 'a'), embedder });
  await analyzeSlide(SAMPLE, params, quietContext(), { outDir: join(dir, 'b'), embedder });
  const filesA = await filesOf(join(dir, 'a'));
  assert.deepEqual(Object.keys(filesA), ['heatmap.png', 'regions.geojson', 'result.json', 'scores.f32', 'tiles.csv']);
  assert.deepEqual(await filesOf(join(dir, 'b')), filesA);
  assert.equal(a.input.sha256, (await checksumInput(SAMPLE)).sha256);
  assert.equal(a.model.trained, false);
  assert.match(a.model.note ?? '', /untrained/);
  assert.ok(a.tiles.analysed > 20 && a.slideScore >= 0 && a.slideScore <= 1);
  assert.ok(['open', 'tissue', 'plan', 'encode', 'score', 'aggregate', 'total'].every((k) => typeof a.timings[k] === 'number'));
  const csv = (await readFile(join(dir, 'a', 'tiles.csv'), 'utf8')).trim().split('\n');
  assert.equal(csv.length, a.tiles.analysed + 1);
});

test('staged as a queue would run it (batches out of order, through bytes) → the same result', async () => {
  const params = parseAnalysisParams({ model: MODEL, batchSize: 7 });
  const slide = await openSlide(SAMPLE);
  try {
    const ctx = quietContext();
    const { plan } = await planAnalysis({ slide }, params, ctx);
    const planCopy = JSON.parse(JSON.stringify(plan));
    const stored: Buffer[] = [];
    for (const range of batchRanges(planCopy, params.batchSize).reverse()) {
      stored.push(encodeBatchOutput(await processBatch({ slide, plan: planCopy, range, embedder, bank: null }, params, ctx)));
    }
    const { sha256, bytes } = await checksumInput(SAMPLE);
    async function* batches(): AsyncIterable<BatchOutput> { for (const b of stored) yield decodeBatchOutput(b); }
    await finishAnalysis({ plan: planCopy, model: embedder.model, bank: null, bankName: null, batches, outDir: join(dir, 'staged'), input: { name: 'CMU-1-Small-Region.svs', sha256, bytes }, timings: {} }, params, ctx);
    await analyzeSlide(SAMPLE, params, ctx, { outDir: join(dir, 'direct'), embedder });
    const staged = await filesOf(join(dir, 'staged'));
    const direct = await filesOf(join(dir, 'direct'));
    assert.deepEqual(staged, direct);
    // A duplicated batch (a retried job written twice under two keys) is refused, not double counted.
    async function* twice(): AsyncIterable<BatchOutput> { yield decodeBatchOutput(stored[0]!); yield decodeBatchOutput(stored[0]!); }
    await assert.rejects(finishAnalysis({ plan: planCopy, model: embedder.model, bank: null, bankName: null, batches: twice, outDir: join(dir, 'dup'), input: { name: 'x', sha256, bytes }, timings: {} }, params, ctx), /appears in two batch outputs/);
  } finally {
    await slide.close();
  }
});

test('bad input: each a clear message and a non-zero exit', async () => {
  const garbage = join(dir, 'garbage.svs');
  await writeFile(garbage, Buffer.alloc(4096, 7));
  const white = join(dir, 'white.tiff');
  await sharp({ create: { width: 1024, height: 1024, channels: 3, background: { r: 250, g: 250, b: 250 } } }).tiff({ tile: true, tileWidth: 256, tileHeight: 256 }).toFile(white);
  const notOnnx = join(dir, 'not-onnx');
  const mismatch = join(dir, 'mismatch');
  const tiny = await resolveModel(MODEL);
  for (const target of [notOnnx, mismatch]) await cp(dirname(tiny.manifestPath), target, { recursive: true });
  await writeFile(join(notOnnx, tiny.manifest.file), 'this is not a protobuf');
  const manifest = JSON.parse(await readFile(join(mismatch, 'manifest.json'), 'utf8'));
  await writeFile(join(mismatch, 'manifest.json'), JSON.stringify({ ...manifest, inputSize: 128 }));
  const bank = join(dir, 'other.lmb');
  await writeBank(bank, {
    format: 'lamina-reference-bank', version: 1, model: { name: MODEL, trained: false }, embeddingSize: 7, count: 1, metric: 'l2', k: 1,
    calibration: { center: 1, spread: 1, z: 3 }, sources: [], totalEmbeddings: 1, parameters: {},
  }, new Float32Array(7));
  await mkdir(join(dir, 'outs'), { recursive: true });
  const cases: [string[], RegExp][] = [
    [[garbage], /garbage\.svs: not a supported slide format/],
    [[join(dir, 'missing.svs')], /missing\.svs/],
    [[white], /white\.tiff: no tissue found/],
    [[SAMPLE, '--model', notOnnx], /is not an ONNX model/],
    [[SAMPLE, '--model', mismatch], /manifest says \[batch, 3, 128, 128\]/],
    [[SAMPLE, '--model', MODEL, '--reference', bank], /reference bank other\.lmb holds embeddings of size 7 .* gives embeddings of size 64/],
  ];
  for (const [args, message] of cases) {
    const out = join(dir, 'outs', String(cases.findIndex((c) => c[0] === args)));
    const { code, stderr } = await cli(['analyze', ...args, '--out', out, ...(args.includes('--model') ? [] : ['--model', MODEL])]);
    assert.notEqual(code, 0, args.join(' '));
    assert.match(stderr, message);
    assert.doesNotMatch(stderr, /unexpected error/);
    const left = await readdir(out).catch((): string[] => []);
    assert.ok(!left.includes('result.json'), 'no result for a failed run');
  }
});

test('Ctrl-C stops cleanly: exit 130, no result.json, no partial files', async () => {
  const out = join(dir, 'cancelled');
  let sent = false;
  const { code, stderr } = await cli(['analyze', SAMPLE, '--out', out, '--model', MODEL, '--batch-size', '1'], (text, child) => {
    if (!sent && /encode +\[/.test(text)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  assert.equal(code, 130, stderr);
  assert.match(stderr, /analysis cancelled; no result written/);
  assert.deepEqual(await readdir(out), [], 'no outputs and no temporary files left');
});
