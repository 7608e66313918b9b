// createEncoder: engine 'ort' gives OrtEncoder; 'webgpu' gives our engine when an adapter exists
// (lavapipe in CI) and falls back to ORT on the CPU with a warning when the adapter index does not
// exist; unknown engines are refused.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createEncoder } from '../../src/encoder/create-encoder.ts';
import { buildBuiltinModel } from '../../src/encoder/model-store.ts';
import type { ModelLocation } from '../../src/encoder/manifest.ts';
import { minRowCosine, randomPixels, tempDir } from './helpers.ts';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

describe('createEncoder', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let loc: ModelLocation;
  before(async () => { tmp = await tempDir(); loc = await buildBuiltinModel('untrained-test-tiny', `${tmp.dir}/m`); });
  after(async () => { await tmp?.cleanup(); });

  it('webgpu engine with an adapter, ort engine, same embeddings', async () => {
    const warnings: string[] = [];
    const gpu = await createEncoder(loc, { engine: 'webgpu', warn: (m) => warnings.push(m) });
    const ort = await createEncoder(loc, { engine: 'ort', threads: 1 });
    try {
      assert.equal(gpu.device, 'webgpu');
      assert.equal(gpu.constructor.name, 'WebGpuVitEncoder');
      assert.equal(ort.device, 'cpu');
      assert.deepEqual(warnings, []);
      const px = randomPixels(2, 64, 3);
      const a = await gpu.embed(px, 2), b = await ort.embed(px, 2);
      assert.ok(minRowCosine(a.embeddings, b.embeddings, 64) >= 0.999);
    } finally {
      await gpu.close();
      await ort.close();
    }
  });

  it('falls back to the CPU with a warning when there is no such adapter', async () => {
    const warnings: string[] = [];
    const enc = await createEncoder(loc, { engine: 'webgpu', gpu: { adapterIndex: 99 }, threads: 1, warn: (m) => warnings.push(m) });
    try {
      assert.equal(enc.device, 'cpu');
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, /falling back to onnxruntime on the CPU/);
    } finally {
      await enc.close();
    }
  });

  it('refuses an unknown engine', async () => {
    await assert.rejects(createEncoder(loc, { engine: 'cuda' as never }), /engine/);
  });
});
