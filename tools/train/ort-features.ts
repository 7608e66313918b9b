/**
 * Frozen features of Lamina models for EBHI-Seg, on the CPU through ONNX Runtime and the
 * pipeline's own preprocessing — so a device call can leave EBHI-Seg out of its shard (64 MiB
 * per call) and the shipped ONNX itself is what gets scored. Debian's CPU PyTorch needs about a
 * second per image for ViT-Tiny; this path about 0.2 s on a busy 2-core machine.
 *   node --import tsx tools/train/ort-features.ts <shard from pack_data.py --eval-only> <out dir> NAME=MODEL…
 * MODEL: a model folder or name. Writes <out>/NAME_{cls,patchmean,centre4}.f32 (rows of
 * embeddingDim, float32, shard order) and <out>/names.json; eval_features.py scores them.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { resolveModel } from '../../src/encoder/model-store.ts';
import { OrtEncoder } from '../../src/encoder/ort-encoder.ts';
import { preprocessTiles } from '../../src/encoder/preprocess.ts';
import type { RgbImage } from '../../src/readers/types.ts';

interface PackRecord { name: string; collection: string; offset: number; length: number }

const [pack, outDir, ...models] = process.argv.slice(2);
if (!pack || !outDir || models.length === 0 || models.some((m) => !/^[\w.-]+=.+/.test(m))) {
  throw new Error('usage: ort-features.ts <shard dir> <out dir> NAME=MODEL…');
}
const index = JSON.parse(await readFile(join(pack, 'index.json'), 'utf8')) as { records: PackRecord[] };
const blob = await readFile(join(pack, 'pack.bin'));
const recs = index.records.filter((r) => r.collection === 'ebhi-seg');
if (recs.length === 0) throw new Error(`${pack} holds no EBHI-Seg images (pack with --eval-only)`);
const tiles: RgbImage[] = await Promise.all(recs.map(async (r) => {
  const { data, info } = await sharp(blob.subarray(r.offset, r.offset + r.length)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}));
await mkdir(outDir, { recursive: true });
await writeFile(join(outDir, 'names.json'), JSON.stringify(recs.map((r) => r.name)));

const BATCH = 16;
for (const spec of models) {
  const [name, model] = [spec.slice(0, spec.indexOf('=')), spec.slice(spec.indexOf('=') + 1)];
  const loc = await resolveModel(model);
  const enc = await OrtEncoder.create(loc, { threads: 2, maxBatch: BATCH });
  const d = loc.manifest.embeddingDim;
  const out = { cls: new Float32Array(tiles.length * d), patchmean: new Float32Array(tiles.length * d), centre4: new Float32Array(tiles.length * d) };
  const t0 = Date.now();
  try {
    for (let s = 0; s < tiles.length; s += BATCH) {
      const batch = tiles.slice(s, s + BATCH);
      const { embeddings, tokens, tokenGrid } = await enc.embed(await preprocessTiles(batch, loc.manifest), batch.length, { tokens: true });
      if (!tokens || !tokenGrid) throw new Error(`${model} has no tokens output`);
      const [g] = tokenGrid;
      const lo = (g - 4) >> 1;  // the central 4 x 4 tokens, as eval.py's "centre4"
      for (let k = 0; k < batch.length; k++) {
        const row = (s + k) * d;
        out.cls.set(embeddings.subarray(k * d, (k + 1) * d), row);
        for (let y = 0; y < g; y++) for (let x = 0; x < g; x++) {
          const base = ((k * g + y) * g + x) * d;
          const centre = y >= lo && y < lo + 4 && x >= lo && x < lo + 4;
          for (let j = 0; j < d; j++) {
            out.patchmean[row + j]! += tokens[base + j]! / (g * g);
            if (centre) out.centre4[row + j]! += tokens[base + j]! / 16;
          }
        }
      }
    }
  } finally {
    await enc.close();
  }
  for (const [readout, v] of Object.entries(out)) await writeFile(join(outDir, `${name}_${readout}.f32`), Buffer.from(v.buffer));
  console.error(`${name}: ${tiles.length} images in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
