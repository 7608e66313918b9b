/**
 * A small ONNX graph writer on onnx-proto's protobufjs classes: enough to emit the ViT graph
 * (nodes, float32/float16/int64 initializers, typed inputs and outputs) deterministically.
 */
import onnxProto from 'onnx-proto';
import { encodeFloat16 } from './float16.ts';

export const { onnx } = onnxProto;

/** ONNX TensorProto.DataType codes used here. */
export const DataType = { FLOAT: 1, INT64: 7, FLOAT16: 10 } as const;
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

export type AttrValue = number | string | number[] | { float: number };

/** A dimension: a fixed size or a symbolic name such as 'batch'. */
export type Dim = number | string;

export class GraphBuilder {
  readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private counter = 0;

  /** Unique value name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** Adds a node and returns its first output name (`options.outputs` for several). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, options: { domain?: string; name?: string; output?: string; outputs?: string[] } = {}): string {
    const outputs = options.outputs ?? [options.output ?? this.fresh(options.name ?? opType)];
    const output = outputs[0]!;
    const attribute = Object.entries(attrs).map(([name, v]) => {
      if (typeof v === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(v) };
      if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: v };
      if (typeof v === 'object') return { name, type: AttrType.FLOAT, f: v.float };
      return { name, type: AttrType.INT, i: v };
    });
    this.nodes.push(onnx.NodeProto.create({
      opType, input: inputs, output: outputs, name: options.name ?? output, domain: options.domain ?? '', attribute,
    }));
    return output;
  }

  /** A float initializer; float16 storage adds a Cast to float32 (folded by ORT at load). */
  floatInit(name: string, shape: number[], data: Float32Array, storage: 'float32' | 'float16'): string {
    if (storage === 'float32') {
      const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      this.initializers.push(onnx.TensorProto.create({ name, dims: shape, dataType: DataType.FLOAT, rawData: raw }));
      return name;
    }
    this.initializers.push(onnx.TensorProto.create({ name: `${name}.f16`, dims: shape, dataType: DataType.FLOAT16, rawData: encodeFloat16(data) }));
    return this.op('Cast', [`${name}.f16`], { to: DataType.FLOAT }, { output: name, name: `${name}.cast` });
  }

  int64Init(name: string, values: number[]): string {
    const raw = new Uint8Array(values.length * 8);
    const view = new DataView(raw.buffer);
    values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    this.initializers.push(onnx.TensorProto.create({ name, dims: [values.length], dataType: DataType.INT64, rawData: raw }));
    return name;
  }

  private valueInfo(name: string, dims: Dim[]) {
    return onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
    });
  }

  input(name: string, dims: Dim[]): string {
    this.inputs.push(this.valueInfo(name, dims));
    return name;
  }

  output(name: string, dims: Dim[]): void {
    this.outputs.push(this.valueInfo(name, dims));
  }

  /** Serialises the model: opset 17 plus the com.microsoft contrib domain. */
  encode(graphName: string, metadata: Record<string, string>): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'lamina',
      producerVersion: '1',
      opsetImport: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
      metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs,
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
