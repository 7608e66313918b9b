/**
 * The issue-9 training recipe (tools/train, Python) on the CPU: the parts a device call cannot
 * afford to get wrong. Needs a python3 with torch, numpy, Pillow and safetensors
 * (LAMINA_TRAIN_PYTHON, else /usr/bin/python3, e.g. Debian's python3-torch); skipped otherwise.
 *  - weights.py reads the shipped ONNX back into the training ViT, which then reproduces the
 *    embeddings the H200 computed for the model card (so a run can start from that model);
 *  - iBOT's block masks and loss do what train.py says;
 *  - the whole device chain (pack -> two arms side by side -> export -> eval) runs on a small
 *    shard of the real images and leaves what the device call brings back;
 *  - the CPU path that scores EBHI-Seg here (ort-features.ts + eval_features.py) agrees with the
 *    PyTorch read-outs of the same weights.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const TRAIN = join(ROOT, 'tools/train');
const HISTOLOGY = join(ROOT, '../shared/histology');
const PY = process.env.LAMINA_TRAIN_PYTHON ?? '/usr/bin/python3';

async function pythonReady(): Promise<string | undefined> {
  try {
    await run(PY, ['-c', 'import torch, numpy, PIL, safetensors'], { timeout: 120_000 });
  } catch {
    return `${PY} lacks torch, numpy, Pillow or safetensors`;
  }
  try {
    await run(PY, ['-c', `import os; assert os.path.isdir(${JSON.stringify(join(HISTOLOGY, 'pcam'))})`]);
  } catch {
    return `no ${HISTOLOGY}`;
  }
  return undefined;
}

const skip = await pythonReady();

async function py(code: string): Promise<string> {
  const { stdout } = await run(PY, ['-c', code], { cwd: TRAIN, timeout: 300_000, maxBuffer: 1 << 24 });
  return stdout;
}

describe('tools/train recipe (CPU smoke)', { skip }, () => {
  it('reads the shipped ONNX into the training ViT and reproduces the H200 reference embeddings', async () => {
    const out = await py(`
import json, numpy as np, torch
from PIL import Image
import augment, vit, weights
d = '../../models/lamina-vit-tiny-dino'
m = vit.build('vit_tiny')
m.load_state_dict(weights.load_backbone_state(d + '/model.onnx', m), strict=True)
img = np.asarray(Image.open(d + '/ref-inputs.png').convert('RGB')).reshape(-1, 224, 224, 3)
x = augment.normalize(torch.from_numpy(img.copy()).permute(0, 3, 1, 2).float() / 255)
with torch.no_grad():
    e = m.eval()(x).double().numpy()
ref = np.array(json.load(open(d + '/ref-embeddings.json'))['embeddings'])
print(json.dumps({'rel': float(np.linalg.norm(e - ref) / np.linalg.norm(ref)), 'n': len(ref)}))
`);
    const { rel, n } = JSON.parse(out) as { rel: number; n: number };
    assert.equal(n, 4);
    assert.ok(rel < 1e-4, `relative error ${rel}`);
  });

  it('masks blobs of 10-50 % of the tokens on about half the images, and the iBOT loss weighs each image once', async () => {
    const out = await py(`
import json, torch, torch.nn.functional as F
import train
g = torch.Generator().manual_seed(1)
m = train.block_masks(4000, 14, (0.1, 0.5), 0.5, g, 'cpu')
share = m.float().mean(1)
hit = share > 0
grid = m.reshape(-1, 14, 14).float()
# Share of a masked token's 4-neighbours that are masked too, against the image's own share.
nb = F.conv2d(grid[:, None], torch.tensor([[[[0., 1, 0], [1, 0, 1], [0, 1, 0]]]]), padding=1)[:, 0]
cnt = F.conv2d(torch.ones(1, 1, 14, 14), torch.tensor([[[[0., 1, 0], [1, 0, 1], [0, 1, 0]]]]), padding=1)[0, 0]
neighbour = float(((nb / cnt) * grid).sum() / grid.sum())
# Loss on two images (3 and 1 masked tokens) against a direct computation.
torch.manual_seed(0)
mask = torch.zeros(2, 5, dtype=torch.bool); mask[0, :3] = True; mask[1, 4] = True
s, t, c = torch.randn(4, 7), torch.randn(4, 7), torch.randn(1, 7)
got = float(train.ibot_loss(s, t, c, mask, 0.1, 0.04))
ce = (-F.softmax((t - c) / 0.04, -1) * F.log_softmax(s / 0.1, -1)).sum(-1)
want = float((ce[:3].mean() + ce[3]) / 2)
print(json.dumps({'frac': float(hit.float().mean()), 'lo': float(share[hit].min()), 'hi': float(share[hit].max()),
                  'meanShare': float(share[hit].mean()), 'neighbour': neighbour, 'got': got, 'want': want}))
`);
    const r = JSON.parse(out) as Record<string, number>;
    assert.ok(r.frac! > 0.45 && r.frac! < 0.55, `masked images ${r.frac}`);
    assert.ok(r.lo! >= 0.09 && r.hi! <= 0.51, `share ${r.lo}..${r.hi}`);
    // Scattered tokens would have neighbours masked at about the image's share (~0.3); blobs far more.
    assert.ok(r.neighbour! > r.meanShare! + 0.25, `neighbour ${r.neighbour} vs share ${r.meanShare}`);
    assert.ok(Math.abs(r.got! - r.want!) < 1e-4 * Math.abs(r.want!), `loss ${r.got} vs ${r.want}`);
  });

  describe('the device chain on a small real shard', () => {
    let dir = '';
    before(async () => { dir = await mkdtemp(join(tmpdir(), 'lamina-train-')); });
    after(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

    it('packs, trains an iBOT and a DINO-only arm, exports timm-named weights and scores them', async () => {
      const data = join(dir, 'data'), out = join(dir, 'out');
      await run(PY, [join(TRAIN, 'pack_data.py'), '--every', '40', '--no-slides', '--out', data], { timeout: 300_000 });
      await run('bash', [join(TRAIN, 'run_device.sh')], {
        timeout: 900_000,
        maxBuffer: 1 << 24,
        env: {
          ...process.env, OUT: out, DATA: data, PY, BUDGET: '60', ARMS: 'ibot dino', ARGS_dino: '--ibot 0', WORK: join(dir, 'work'),
          TRAIN_ARGS: '--arch vit_test --batch 4 --local-crops 2 --out-dim 64 --patch-out-dim 32 --max-steps 3 --limit 16 --log-every 1',
          EVAL_ARGS: '--arch vit_test --limit 20 --variants --no-ref',
        },
      });
      // Exactly timm's keys for a 2-block ViT: no heads, no mask token.
      const expected = ['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias', 'norm.weight', 'norm.bias'];
      for (let b = 0; b < 2; b++) {
        for (const p of ['norm1', 'attn.qkv', 'attn.proj', 'norm2', 'mlp.fc1', 'mlp.fc2']) expected.push(`blocks.${b}.${p}.weight`, `blocks.${b}.${p}.bias`);
      }
      for (const arm of ['ibot', 'dino']) {
        const st = await readFile(join(out, arm, 'model.safetensors'));
        const header = JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString()) as Record<string, { dtype: string }>;
        const keys = Object.keys(header).filter((k) => k !== '__metadata__').sort();
        assert.deepEqual(keys, [...expected].sort(), arm);
        assert.ok(keys.every((k) => header[k]!.dtype === 'F16'));
        const manifest = JSON.parse(await readFile(join(out, arm, 'manifest.json'), 'utf8'));
        assert.equal(manifest.training.steps, 3);
        assert.equal(/iBOT/.test(manifest.objective), arm === 'ibot');
        const rows = (await readFile(join(out, arm, 'loss.csv'), 'utf8')).trim().split('\n');
        const cols = rows[0]!.split(',');
        assert.equal(rows.length, 4);
        for (const row of rows.slice(1)) {
          const v = Object.fromEntries(row.split(',').map((x, i) => [cols[i], Number(x)]));
          assert.ok(Number.isFinite(v.loss) && Number.isFinite(v.dino), row);
          // The iBOT term is a cross-entropy over 32 prototypes: near ln 32 at the start.
          if (arm === 'ibot') assert.ok(v.ibot! > 1 && v.ibot! < 10, `ibot ${v.ibot}`);
          else assert.equal(v.ibot, 0);
        }
      }
      const ev = JSON.parse(await readFile(join(out, 'eval.json'), 'utf8'));
      for (const name of ['ibot', 'dino', 'untrained', 'colour_hist', 'ibot_centre4', 'ibot_pcam-crop48']) {
        const r = ev.results[name];
        assert.ok(r, name);
        for (const k of ['pcam_knn_acc', 'ebhi_knn_acc']) assert.ok(r[k] >= 0 && r[k] <= 1, `${name} ${k}`);
      }
      assert.ok('pcam_linear_acc' in ev.results.ibot && !('pcam_linear_acc' in ev.results.ibot_centre4));
      assert.equal(ev.n.pcam_test, 20);
    });

    it('scores EBHI-Seg from ONNX Runtime features that match the PyTorch read-outs', async () => {
      const data = join(dir, 'eval'), feats = join(dir, 'feats');
      await run(PY, [join(TRAIN, 'pack_data.py'), '--eval-only', '--every', '40', '--out', data], { timeout: 300_000 });
      await run(process.execPath, ['--import', 'tsx', join(TRAIN, 'ort-features.ts'), data, feats, 'v1=lamina-vit-tiny-dino'], { cwd: ROOT, timeout: 300_000 });
      const out = await py(`
import json, numpy as np, torch
import data, eval as ev, vit, weights
recs = data.select(data.load_index(${JSON.stringify(data)}), collection='ebhi-seg')
m = vit.build('vit_tiny')
m.load_state_dict(weights.load_backbone_state('../../models/lamina-vit-tiny-dino/model.onnx', m), strict=True)
want = ev.encode(m.eval(), data.decode(${JSON.stringify(data)}, recs)[:3], 'cpu')
n = len(recs)
rel = {}
for k in ('cls', 'patchmean', 'centre4'):
    got = np.fromfile(${JSON.stringify(feats)} + f'/v1_{k}.f32', np.float32).reshape(n, -1)[:3]
    w = want[k].numpy()
    rel[k] = float(np.linalg.norm(got - w) / np.linalg.norm(w))
print(json.dumps({'n': n, 'rel': rel}))
`);
      const { n, rel } = JSON.parse(out) as { n: number; rel: Record<string, number> };
      assert.equal(n, 14);
      // Same JPEG bytes (sharp and Pillow both decode with libjpeg-turbo), same weights: measured ~1e-6.
      for (const [k, v] of Object.entries(rel)) assert.ok(v < 1e-4, `${k}: relative difference ${v}`);
      await run(PY, [join(TRAIN, 'eval_features.py'), '--data', data, '--features', feats, '--out', join(dir, 'ebhi.json'), 'v1'], { cwd: TRAIN, timeout: 300_000 });
      const ev = JSON.parse(await readFile(join(dir, 'ebhi.json'), 'utf8'));
      for (const name of ['v1', 'v1_centre4', 'v1_cls+patchmean', 'colour_hist']) {
        const acc = ev.results[name]?.ebhi_knn_acc;
        assert.ok(acc >= 0 && acc <= 1, `${name}: ${acc}`);
      }
      assert.equal(ev.n.ebhi, 14);
    });
  });
});
