/**
 * The peer for `lamina bench attention --engine ort`: ONNX Runtime's WebGPU execution provider
 * running one com.microsoft MultiHeadAttention node (f16 query/key/value of (batch, seq, H·D)).
 * ORT's node binding takes host tensors, so its times are wall-clock per `session.run`, uploads
 * and the readback included (at the sizes measured the attention itself dominates).
 */
import onnxProto from 'onnx-proto';
import { mulberry32 } from '../../../util/prng.ts';

const { onnx } = onnxProto;
const FLOAT16 = 10;

/** A one-node MultiHeadAttention model with f16 inputs and output. */
export function mhaModel(heads: number, headDim: number): Uint8Array {
  const hidden = heads * headDim;
  const info = (name: string, seq: string) => onnx.ValueInfoProto.create({
    name, type: { tensorType: { elemType: FLOAT16, shape: { dim: [{ dimParam: 'batch' }, { dimParam: seq }, { dimValue: hidden }] } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8, producerName: 'lamina-bench',
    opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    graph: {
      name: 'mha',
      node: [onnx.NodeProto.create({
        opType: 'MultiHeadAttention', domain: 'com.microsoft', input: ['query', 'key', 'value'], output: ['out'], name: 'mha',
        attribute: [{ name: 'num_heads', type: 2, i: heads }],
      })],
      input: [info('query', 'seq_q'), info('key', 'seq_k'), info('value', 'seq_k')],
      output: [info('out', 'seq_q')],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface OrtTiming { seq: number; medianMs: number; runs: number }

/** Median wall time of `session.run` for each sequence length (after one warm-up run). */
export async function benchOrtAttention(seqs: number[], heads: number, headDim: number, reps: number): Promise<OrtTiming[]> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(mhaModel(heads, headDim), { executionProviders: ['webgpu'] });
  const rand = mulberry32(7);
  const out: OrtTiming[] = [];
  try {
    for (const seq of seqs) {
      const n = seq * heads * headDim;
      // random f16 in [-1, 1): sign, exponent 11..14, random mantissa
      const make = () => new ort.Tensor('float16', Uint16Array.from({ length: n }, () => ((rand() < 0.5 ? 0x8000 : 0) | ((11 + Math.floor(rand() * 4)) << 10) | Math.floor(rand() * 1024))), [1, seq, heads * headDim]);
      const feeds = { query: make(), key: make(), value: make() };
      await session.run(feeds);
      const times: number[] = [];
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        await session.run(feeds);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      out.push({ seq, medianMs: times[Math.floor(times.length / 2)]!, runs: reps });
    }
  } finally {
    await session.release();
  }
  return out;
}
