/**
 * Reads a ViT written by `buildVitOnnx` back into timm-named float32 weights and its config — for
 * engines that run the weights themselves (the WebGPU ViT) and for `lamina model export`.
 * Initializers keep timm names; `<name>.T` holds a Linear weight transposed to [in, out] and
 * `<name>.f16` a float16 copy, both undone here.
 */
import { readFile } from 'node:fs/promises';
import { UnprocessableError } from '../errors.ts';
import { decodeFloat16 } from './float16.ts';
import { DataType, onnx } from './onnx-graph.ts';
import { checkVitWeights, type VitConfig, type VitWeights } from './vit-config.ts';

/**
 * Weights and config of a Lamina-generated ViT ONNX file (bytes or path).
 * @throws UnprocessableError for other ONNX files (no `lamina.vitConfig` metadata).
 */
export async function readVitOnnx(source: string | Uint8Array): Promise<{ config: VitConfig; weights: VitWeights }> {
  const what = typeof source === 'string' ? source : 'ONNX bytes';
  const bytes = typeof source === 'string' ? await readFile(source) : source;
  let model: InstanceType<typeof onnx.ModelProto>;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (err) {
    throw new UnprocessableError(`${what} is not an ONNX model: ${(err as Error).message}`, { cause: err });
  }
  const meta = model.metadataProps.find((p) => p.key === 'lamina.vitConfig')?.value;
  if (!meta) throw new UnprocessableError(`${what}: not a ViT written by Lamina (no lamina.vitConfig metadata); import its timm safetensors instead`);
  const config = JSON.parse(meta) as VitConfig;
  const weights: VitWeights = new Map();
  for (const t of model.graph?.initializer ?? []) {
    let name = t.name ?? '';
    const dims = (t.dims ?? []).map(Number);
    let data: Float32Array;
    const raw = t.rawData ?? new Uint8Array();
    if (t.dataType === DataType.FLOAT16) {
      data = decodeFloat16(raw);
      name = name.replace(/\.f16$/, '');
    } else if (t.dataType === DataType.FLOAT) {
      data = raw.length ? new Float32Array(new Uint8Array(raw).buffer) : Float32Array.from(t.floatData ?? []);
    } else continue;
    if (name.endsWith('.T')) {
      const [inp, out] = dims as [number, number];
      const back = new Float32Array(data.length);
      for (let i = 0; i < inp; i++) for (let o = 0; o < out; o++) back[o * inp + i] = data[i * out + o]!;
      weights.set(name.slice(0, -2), { shape: [out, inp], data: back });
    } else {
      weights.set(name, { shape: dims, data });
    }
  }
  checkVitWeights(weights, config, what);
  return { config, weights };
}
