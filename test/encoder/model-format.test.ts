import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS } from '../../src/encoder/builtin-models.ts';
import { locateModel } from '../../src/encoder/manifest.ts';
import { buildBuiltinModel, resolveModel } from '../../src/encoder/model-store.ts';
import { onnx } from '../../src/encoder/onnx-graph.ts';
import { OrtEncoder } from '../../src/encoder/ort-encoder.ts';
import { randomVitWeights } from '../../src/encoder/vit-random.ts';
import { tempDir } from './helpers.ts';

describe('model format', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let tinyDir: string;
  before(async () => {
    tmp = await tempDir();
    tinyDir = (await buildBuiltinModel('untrained-test-tiny', `${tmp.dir}/tiny`)).manifestPath.replace(/\/manifest.json$/, '');
  });
  after(async () => { await tmp.cleanup(); });

  /** A copy of the tiny model whose manifest is edited by `edit`. */
  async function variant(label: string, edit: (m: Record<string, unknown>) => void): Promise<string> {
    const dir = `${tmp.dir}/${label}`;
    await mkdir(dir, { recursive: true });
    await copyFile(`${tinyDir}/model.onnx`, `${dir}/model.onnx`);
    const m = JSON.parse(await readFile(`${tinyDir}/manifest.json`, 'utf8'));
    edit(m);
    await writeFile(`${dir}/manifest.json`, JSON.stringify(m));
    return dir;
  }

  it('the graph uses com.microsoft MultiHeadAttention and Gelu, one per block', async () => {
    const model = onnx.ModelProto.decode(await readFile(`${tinyDir}/model.onnx`));
    const nodes = model.graph?.node ?? [];
    const count = (op: string) => nodes.filter((n) => n.opType === op && n.domain === 'com.microsoft').length;
    assert.equal(count('MultiHeadAttention'), BUILTIN_MODELS['untrained-test-tiny']!.config.depth);
    assert.equal(count('Gelu'), BUILTIN_MODELS['untrained-test-tiny']!.config.depth);
    const mha = nodes.find((n) => n.opType === 'MultiHeadAttention')!;
    assert.equal(Number((mha.attribute ?? []).find((a) => a.name === 'num_heads')!.i), 4);
    assert.deepEqual(model.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', 17], ['com.microsoft', 1]]);
    assert.equal(nodes.filter((n) => n.opType === 'LayerNormalization').length, 2 * 2 + 1);
  });

  it('is deterministic: the same seed gives the same bytes, another seed other weights', async () => {
    const again = await buildBuiltinModel('untrained-test-tiny', `${tmp.dir}/tiny-again`);
    assert.deepEqual(await readFile(again.onnxPath), await readFile(`${tinyDir}/model.onnx`));
    const cfg = BUILTIN_MODELS['untrained-test-tiny']!.config;
    const a = randomVitWeights(cfg, 1).get('blocks.1.mlp.fc2.weight')!.data;
    const b = randomVitWeights(cfg, 2).get('blocks.1.mlp.fc2.weight')!.data;
    assert.notDeepEqual(a, b);
    // The ViT-S/16 stream (what build-default builds), pinned (values and a hash) so any change of generator is noticed:
    // caches built by an older version would otherwise silently differ from fresh builds.
    const s = BUILTIN_MODELS['untrained-vit-s16']!;
    const w = randomVitWeights({ ...s.config, depth: 1 }, s.seed);
    assert.deepEqual([...w.get('cls_token')!.data.subarray(0, 3)], [-0.017425537109375, 0.01424407958984375, -0.025115966796875]);
    const qkv = w.get('blocks.0.attn.qkv.weight')!.data;
    assert.equal(createHash('sha256').update(new Uint8Array(qkv.buffer)).digest('hex'), '168b1f5352067f497f53deab0053d10c19ba81188b56b622afa50d448bbbae68');
  });

  it('refuses a file that is not ONNX with a clear message', async () => {
    const dir = await variant('not-onnx', () => {});
    await writeFile(`${dir}/model.onnx`, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]));
    await assert.rejects(OrtEncoder.create(dir), { name: 'UnprocessableError', message: `${dir}/model.onnx is not an ONNX model (starts with bytes 89 50 4e 47 0d 0a 1a 0a)` });
    await writeFile(`${dir}/model.onnx`, Buffer.from('\x08\x07garbage that is not protobuf at all'));
    await assert.rejects(OrtEncoder.create(dir), /model.onnx: onnxruntime cannot load this model: /);
  });

  it('refuses a manifest that does not match the model', async () => {
    const dim = await variant('bad-dim', (m) => { m.embeddingDim = 384; });
    await assert.rejects(OrtEncoder.create(dim), /output 'embedding' is float32 \[1, 64\], manifest implies float32 \[1, 384\]/);
    const out = await variant('bad-output', (m) => { m.outputs = { embedding: 'pooled' }; });
    await assert.rejects(OrtEncoder.create(out), /manifest output embedding='pooled' is not a model output; the model's outputs are embedding, tokens/);
    const input = await variant('bad-input', (m) => { m.inputName = 'image'; });
    await assert.rejects(OrtEncoder.create(input), /manifest input 'image' is not a model input; the model's inputs are pixels/);
    const size = await variant('bad-size', (m) => { m.inputSize = 96; });
    await assert.rejects(OrtEncoder.create(size), /input 'pixels' has shape \[batch, 3, 64, 64\], manifest says \[batch, 3, 96, 96\]/);
  });

  it('refuses invalid manifests and names the field', async () => {
    const noStd = await variant('no-std', (m) => { delete m.std; });
    await assert.rejects(locateModel(noStd), /manifest.json: not a valid Lamina model manifest: std: /);
    const odd = await variant('odd-patch', (m) => { m.patchSize = 7; });
    await assert.rejects(locateModel(odd), /inputSize 64 is not a multiple of patchSize 7/);
    await assert.rejects(locateModel(`${tmp.dir}/nowhere`), { name: 'NotFoundError' });
    await writeFile(`${tmp.dir}/lonely.onnx`, 'x');
    await assert.rejects(locateModel(`${tmp.dir}/lonely.onnx`), /lonely.onnx: no model manifest at .*lonely.manifest.json/);
  });

  it('finds <name>.onnx beside <name>.manifest.json', async () => {
    await copyFile(`${tinyDir}/model.onnx`, `${tmp.dir}/flat.onnx`);
    await copyFile(`${tinyDir}/manifest.json`, `${tmp.dir}/flat.manifest.json`);
    const loc = await locateModel(`${tmp.dir}/flat.onnx`);
    assert.equal(loc.onnxPath, `${tmp.dir}/flat.onnx`);
    const enc = await OrtEncoder.create(loc, { threads: 1 });
    await enc.close();
    await enc.close();
  });

  it('resolves built-in names into the LAMINA_MODEL_DIR cache, building once', async () => {
    const saved = process.env.LAMINA_MODEL_DIR;
    process.env.LAMINA_MODEL_DIR = `${tmp.dir}/cache`;
    try {
      const [a, b] = await Promise.all([resolveModel('untrained-test-tiny'), resolveModel('untrained-test-tiny')]);
      assert.equal(a.onnxPath, `${tmp.dir}/cache/untrained-test-tiny/model.onnx`);
      assert.equal(b.onnxPath, a.onnxPath);
      assert.equal(a.manifest.trained, false);
      assert.match(a.manifest.notes!, /^UNTRAINED/);
      await assert.rejects(resolveModel('no-such-model'), /model not found: 'no-such-model' is neither a model path nor a known model name \(built-in: untrained-vit-s16, /);
    } finally {
      if (saved === undefined) delete process.env.LAMINA_MODEL_DIR; else process.env.LAMINA_MODEL_DIR = saved;
    }
  });

  it('refuses a device this onnxruntime build lacks', async () => {
    await assert.rejects(OrtEncoder.create(tinyDir, { device: 'cuda' }), { name: 'DeviceError', message: /'cuda' execution provider is not installed/ });
  });
});
