/**
 * The default encoder (issue 9): the trained `lamina-vit-tiny-dino` committed in models/, used
 * whenever nothing names a model, with nothing generated or downloaded, and labelled with its
 * manifest's `summary` wherever results are read. The UNTRAINED built-ins stay buildable and
 * selectable by name, and say so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analysisDefaults } from '../../pipelines/anomaly.ts';
import { DEFAULT_MODEL_NAME } from '../../src/encoder/builtin-models.ts';
import { resolveModel } from '../../src/encoder/model-store.ts';
import { modelLine } from '../../src/cli/embedder-run.ts';
import { resultModel, UNTRAINED_NOTE } from '../../src/pipeline/finish.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const SAMPLE = join(root, '../shared/slides/CMU-1-Small-Region.svs');

/** Runs the CLI with the model cache in `cache`; resolves with exit code and output. */
function cli(args: string[], cache: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bin/lamina.js'), ...args], { cwd: root, env: { ...process.env, LAMINA_MODEL_DIR: cache } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('the default model is the trained lamina-vit-tiny-dino in models/, labelled honestly by its manifest', async () => {
  assert.equal(DEFAULT_MODEL_NAME, 'lamina-vit-tiny-dino');
  assert.equal(analysisDefaults.model, DEFAULT_MODEL_NAME);
  const loc = await resolveModel();
  assert.equal(loc.manifestPath, join(root, 'models/lamina-vit-tiny-dino/manifest.json'));
  assert.equal(loc.manifest.trained, true);
  // A re-import that drops the summary would leave results unlabelled: it must be there and say
  // what the model is and is not (`lamina model import … --summary "…"` writes it).
  const summary = loc.manifest.summary ?? '';
  assert.match(summary, /self-supervised/i);
  assert.match(summary, /not a pathology foundation model/);
  assert.match(summary, /models\/lamina-vit-tiny-dino\/README\.md/);
});

test('result.json `model.note`: the summary for a trained model, the UNTRAINED note otherwise', () => {
  const info = { name: 'm', trained: true, embeddingSize: 4, inputSize: 224, mpp: 0.5 };
  assert.deepEqual(resultModel({ ...info, summary: 'one line' }), { ...info, note: 'one line' });
  assert.deepEqual(resultModel(info), info);
  assert.deepEqual(resultModel({ ...info, trained: false, summary: 'ignored' }), { ...info, trained: false, note: UNTRAINED_NOTE });
  assert.equal(modelLine({ ...info, note: 'one line' }), 'model: m (trained) — one line');
  assert.equal(modelLine({ ...info, trained: false, note: UNTRAINED_NOTE }), 'model: m (UNTRAINED: fixed-seed random weights)');
});

test('lamina analyze with no --model uses the default, builds nothing, and prints and records its summary', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lamina-default-model-'));
  try {
    const cache = join(dir, 'cache');
    const out = join(dir, 'out');
    const { code, stdout, stderr } = await cli(['analyze', SAMPLE, '--out', out], cache);
    assert.equal(code, 0, stderr);
    const { manifest } = await resolveModel(DEFAULT_MODEL_NAME);
    assert.ok(stdout.includes(`model: lamina-vit-tiny-dino (trained) — ${manifest.summary}`), stdout);
    assert.doesNotMatch(stderr, /UNTRAINED/);
    const result = JSON.parse(await readFile(join(out, 'result.json'), 'utf8'));
    assert.deepEqual(result.model, { name: 'lamina-vit-tiny-dino', trained: true, embeddingSize: 192, inputSize: 224, mpp: 0.5, note: manifest.summary });
    assert.equal(result.parameters.model, 'lamina-vit-tiny-dino');
    // Nothing generated: the default is read from models/, the cache folder never made.
    assert.deepEqual(await readdir(cache).catch(() => []), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the UNTRAINED built-ins stay buildable and selectable by name, and say UNTRAINED', { timeout: 300_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lamina-untrained-model-'));
  try {
    const cache = join(dir, 'cache');
    // build-default with no --name still builds untrained-vit-s16 (the ViT-S/16 the benchmarks use).
    const built = await cli(['model', 'build-default', '--out', join(dir, 's16')], cache);
    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stdout, /^model {6}untrained-vit-s16 {2}\(UNTRAINED\)$/m);
    assert.match(built.stdout, /^trained {4}NO$/m);

    const out = join(dir, 'out');
    const run = await cli(['analyze', SAMPLE, '--out', out, '--model', 'untrained-test-tiny'], cache);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /note: encoder 'untrained-test-tiny' is UNTRAINED/);
    assert.match(run.stdout, /^model: untrained-test-tiny \(UNTRAINED: fixed-seed random weights\)$/m);
    const result = JSON.parse(await readFile(join(out, 'result.json'), 'utf8'));
    assert.equal(result.model.trained, false);
    assert.equal(result.model.note, UNTRAINED_NOTE);
    assert.deepEqual(await readdir(cache), ['untrained-test-tiny']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
