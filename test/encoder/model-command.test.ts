import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { command } from '../../src/cli/commands/model.ts';
import { locateModel } from '../../src/encoder/manifest.ts';
import { readVitOnnx } from '../../src/encoder/onnx-weights.ts';
import { tempDir } from './helpers.ts';

/** Runs `lamina model …` in-process, capturing stdout. */
async function run(argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
  try {
    return { code: await command.run(argv), out: lines.join('\n') };
  } finally {
    console.log = log;
  }
}

describe('lamina model', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => { tmp = await tempDir(); });
  after(async () => { await tmp.cleanup(); });

  it('builds, exports and re-imports a model, saying UNTRAINED throughout', async () => {
    const built = await run(['build-default', '--name', 'untrained-vit-tiny-p14-reg4', '--out', `${tmp.dir}/reg4`]);
    assert.equal(built.code, 0);
    assert.match(built.out, /model {6}untrained-vit-tiny-p14-reg4 {2}\(UNTRAINED\)/);
    assert.match(built.out, /^UNTRAINED: fixed-seed random weights/m);
    const exported = await run(['export', `${tmp.dir}/reg4`, '--out', `${tmp.dir}/reg4.safetensors`]);
    assert.match(exported.out, /wrote 63 tensors \(timm names\) of untrained-vit-tiny-p14-reg4 .* UNTRAINED weights/);
    const imported = await run(['import', `${tmp.dir}/reg4.safetensors`, '--out', `${tmp.dir}/again`, '--arch', 'vit-tiny']);
    assert.equal(imported.code, 0);
    assert.match(imported.out, /checked with onnxruntime/);
    const [a, b] = await Promise.all([locateModel(`${tmp.dir}/reg4`), locateModel(`${tmp.dir}/again`)]);
    // The export carries how the model is fed, so the import needs no --mean/--std/--mpp.
    assert.deepEqual(b.manifest.mean, a.manifest.mean);
    assert.deepEqual(b.manifest.std, a.manifest.std);
    assert.equal(b.manifest.trained, false);
    const [wa, wb] = await Promise.all([readVitOnnx(a.onnxPath), readVitOnnx(b.onnxPath)]);
    assert.deepEqual(wb.weights.get('blocks.3.ls2.gamma')!.data, wa.weights.get('blocks.3.ls2.gamma')!.data);
    const info = await run(['info', `${tmp.dir}/again`]);
    assert.match(info.out, /shape {6}vit, patch 14 \(7×7 tokens\), width 192, 4 layers, 3 heads, 4 register tokens/);
    assert.match(info.out, /check {6}onnxruntime loads it/);
  });

  it('lists the shipped default first; its one-line summary survives export and import, and --summary replaces it', async () => {
    const { manifest } = await locateModel(new URL('../../models/lamina-vit-tiny-dino', import.meta.url).pathname);
    const listed = await run(['list']);
    assert.ok(listed.out.includes(`lamina-vit-tiny-dino           [default] trained: ${manifest.summary}`), listed.out);
    assert.match(listed.out, /^ {2}untrained-vit-s16 {14}UNTRAINED ViT-S\/16/m);
    assert.match(listed.out, /^default model: lamina-vit-tiny-dino$/m);

    await run(['export', 'lamina-vit-tiny-dino', '--out', `${tmp.dir}/dino.safetensors`, '--f16']);
    await run(['import', `${tmp.dir}/dino.safetensors`, '--out', `${tmp.dir}/dino`, '--arch', 'vit-tiny', '--f16']);
    const again = await locateModel(`${tmp.dir}/dino`);
    assert.equal(again.manifest.summary, manifest.summary);
    assert.equal(again.manifest.trained, true);
    const info = await run(['info', `${tmp.dir}/dino`, '--no-check']);
    assert.ok(info.out.includes(`summary    ${manifest.summary}`), info.out);
    await run(['import', `${tmp.dir}/dino.safetensors`, '--out', `${tmp.dir}/dino2`, '--arch', 'vit-tiny', '--summary', 'a test import']);
    assert.equal((await locateModel(`${tmp.dir}/dino2`)).manifest.summary, 'a test import');
  });

  it('refuses bad flags with the shared wording', async () => {
    await assert.rejects(run(['import', 'x.safetensors', '--out', 'y', '--arch', 'vit-mega']), /Expected auto or one of vit-tiny, .* for --arch but received "vit-mega"/);
    await assert.rejects(run(['import', 'x.safetensors', '--out', 'y', '--mean', '1,2']), /Expected three comma-separated numbers \(r,g,b\) for --mean but received "1,2"/);
    await assert.rejects(run(['frobnicate']), /Expected a subcommand \(build-default, import, info, export, list\) but received 'frobnicate'/);
  });
});
