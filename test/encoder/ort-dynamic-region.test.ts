// Regions on the CPU (issue 7): OrtEncoder.embedRegion runs the any-size graph that
// buildVitOnnx({ dynamicSize: true }) writes, its position grid resized inside the graph by ONNX
// Resize. Checked three ways:
// - against a fixed-size model of the same weights whose pos_embed is the host table the WebGPU
//   engine adds (kernels/vit-tokens/pos-embed.ts positionTable, bicubic), both on ORT f32: the
//   in-graph resize must be that table (up- and down-sizing, prefix rows in or out of pos_embed);
// - at the trained size it equals the fixed model exactly (Resize to the same grid is identity);
// - against the WebGPU engine's embedRegion on the trained default model (lavapipe here):
//   cosine >= 0.999 per token, the bound the engines are held to.
// And the errors: a size that is not a multiple of the patch size, a model without token output.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS } from '../../src/encoder/builtin-models.ts';
import { writeVitModel } from '../../src/encoder/model-store.ts';
import { OrtEncoder } from '../../src/encoder/ort-encoder.ts';
import { randomVitWeights } from '../../src/encoder/vit-random.ts';
import { positionTable } from '../../kernels/vit-tokens/pos-embed.ts';
import { InvalidParameterError, UnprocessableError } from '../../src/errors.ts';
import { locateModel } from '../../src/encoder/manifest.ts';
import { minRowCosine, randomPixels, tempDir } from './helpers.ts';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

process.env.XDG_RUNTIME_DIR ??= '/tmp';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('OrtEncoder.embedRegion (any-size graph)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir();
    process.env.LAMINA_MODEL_DIR = join(tmp.dir, 'cache');
  });
  after(async () => { await tmp?.cleanup(); });

  const cases = [
    { name: 'untrained-test-tiny', sizes: [32, 64, 120] }, // prefix rows inside pos_embed; 8 → 4, 8, 15 cells
    { name: 'untrained-vit-tiny-p14-reg4', sizes: [56, 140] }, // registers, pos_embed without prefix
  ];
  for (const c of cases) {
    it(`${c.name}: in-graph position resize equals the WebGPU engine's host table`, async () => {
      const model = BUILTIN_MODELS[c.name]!;
      const weights = randomVitWeights(model.config, model.seed);
      const meta = { mean: model.mean, std: model.std, mpp: model.mpp, trained: false };
      const base = await writeVitModel(join(tmp.dir, c.name), model.config, weights, { name: c.name, ...meta });
      const enc = await OrtEncoder.create(base, { threads: 1 });
      try {
        for (const size of c.sizes) {
          const cfg = model.config;
          const prefix = 1 + cfg.numRegisterTokens;
          const table = positionTable(weights.get('pos_embed')!.data, cfg.dim, prefix, cfg.posEmbedIncludesPrefix, size / cfg.patchSize, 'bicubic');
          const rows = cfg.posEmbedIncludesPrefix ? prefix + (size / cfg.patchSize) ** 2 : (size / cfg.patchSize) ** 2;
          const fixedWeights = new Map(weights);
          fixedWeights.set('pos_embed', { shape: [1, rows, cfg.dim], data: cfg.posEmbedIncludesPrefix ? table : table.slice(prefix * cfg.dim) });
          const fixed = await OrtEncoder.create(
            await writeVitModel(join(tmp.dir, `${c.name}-${size}`), { ...cfg, inputSize: size }, fixedWeights, { name: `${c.name}-${size}`, ...meta }),
            { threads: 1 },
          );
          try {
            const pixels = randomPixels(2, size, size);
            const want = await fixed.embed(pixels, 2, { tokens: true });
            const got = await enc.embedRegion(pixels, 2, size, { tokens: true });
            assert.deepEqual(got.tokenGrid, [size / cfg.patchSize, size / cfg.patchSize]);
            assert.ok(maxAbsDiff(got.tokens!, want.tokens!) < 2e-4, `${size} px tokens differ by ${maxAbsDiff(got.tokens!, want.tokens!)}`);
            assert.ok(maxAbsDiff(got.embeddings, want.embeddings) < 2e-4, `${size} px embeddings`);
          } finally {
            await fixed.close();
          }
        }
        // the trained size: the same numbers as the fixed-size model itself
        const s = model.config.inputSize;
        const pixels = randomPixels(1, s, 7);
        const a = await enc.embed(pixels, 1, { tokens: true });
        const b = await enc.embedRegion(pixels, 1, s, { tokens: true });
        assert.ok(maxAbsDiff(a.tokens!, b.tokens!) < 1e-5);
      } finally {
        await enc.close();
      }
    });
  }

  it('matches the WebGPU engine on the trained default model (cosine >= 0.999 per token)', async (t) => {
    const { WebGpuVitEncoder } = await import('../../src/encoder/webgpu-vit-encoder.ts');
    const loc = await locateModel('models/lamina-vit-tiny-dino');
    let gpu;
    try {
      gpu = await WebGpuVitEncoder.create(loc, { maxBatch: 2 });
    } catch (err) {
      // No adapter at all (not even lavapipe) is the one reason to skip; anything else fails.
      if ((err as Error).name === 'DeviceError') return t.skip(`no WebGPU adapter: ${(err as Error).message}`);
      throw err;
    }
    const ort = await OrtEncoder.create(loc, { threads: 2 });
    try {
      // 4 and 15 cells around the trained 14 (lavapipe takes ~10-40 s per forward on a loaded
      // machine, so two small sizes; larger grids are held to the same host table by the tests above).
      for (const size of [64, 240]) {
        const pixels = randomPixels(1, size, size + 1);
        const want = await gpu.embedRegion(pixels, 1, size, { tokens: true });
        const got = await ort.embedRegion(pixels, 1, size, { tokens: true });
        const ct = minRowCosine(got.tokens!, want.tokens!, 192);
        const ce = minRowCosine(got.embeddings, want.embeddings, 192);
        assert.ok(ct >= 0.999, `${size} px: worst token cosine ${ct}`);
        assert.ok(ce >= 0.999, `${size} px: embedding cosine ${ce}`);
      }
    } finally {
      await ort.close();
      await gpu.close();
    }
  });

  it('refuses a size that is not a multiple of the patch size, and a model without tokens', async () => {
    const model = BUILTIN_MODELS['untrained-test-tiny']!;
    const loc = await writeVitModel(join(tmp.dir, 'err'), model.config, randomVitWeights(model.config, 1), {
      name: 'err', mean: model.mean, std: model.std, mpp: model.mpp, trained: false,
    });
    const enc = await OrtEncoder.create(loc, { threads: 1 });
    try {
      await assert.rejects(enc.embedRegion(new Float32Array(3 * 60 * 60), 1, 60), (err: Error) =>
        err instanceof InvalidParameterError && /Expected positive multiple of the patch size 8 for size but received 60/.test(err.message));
    } finally {
      await enc.close();
    }
    // the same graph, its manifest without a tokens output
    const dir = join(tmp.dir, 'no-tokens');
    await cp(dirname(loc.manifestPath), dir, { recursive: true });
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    delete manifest.outputs.tokens;
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const plain = await OrtEncoder.create(dir, { threads: 1 });
    try {
      await assert.rejects(plain.embedRegion(new Float32Array(3 * 64 * 64), 1, 64, { tokens: true }), (err: Error) =>
        err instanceof UnprocessableError && /has no patch-token output/.test(err.message));
    } finally {
      await plain.close();
    }
  });
});
