/**
 * `OrtEncoder`: any ONNX image encoder in the Lamina model format, run by onnxruntime-node. CPU
 * execution provider by default; `webgpu` and `cuda` by option, refused with a DeviceError when
 * this onnxruntime-node build lacks them or the session cannot start on them. At creation the
 * model's inputs and outputs are checked against its manifest, including a one-tile dry run.
 *
 * `embedRegion` (native-resolution regions, issue 7) runs images of any multiple of the patch
 * size as one sequence each: for a ViT written by Lamina, a second graph accepting any size
 * (`buildVitOnnx({ dynamicSize: true })`, position grid resized in the graph as the WebGPU engine
 * does) is generated from the same weights on first use and cached in the model cache.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { CancelledError, DeviceError, invalidParameter, UnprocessableError } from '../errors.ts';
import { locateModel, type ModelLocation, type ModelManifest, tokenGridSide } from './manifest.ts';
import { modelCacheDir } from './model-store.ts';
import { buildVitOnnx } from './onnx-vit-builder.ts';
import { readVitOnnx } from './onnx-weights.ts';
import type { EmbedOptions, EmbedResult, Encoder, EncoderDevice } from './types.ts';

/** Options of {@link OrtEncoder.create}. */
export interface OrtEncoderOptions {
  /** Execution provider. @defaultValue 'cpu' */
  device?: EncoderDevice;
  /** ORT intra-op threads; 0 lets ORT pick (one per core). @defaultValue 0 */
  threads?: number;
  /** Largest batch sent to one `session.run`; bigger `embed` calls are split. @defaultValue 64 */
  maxBatch?: number;
}

/** onnxruntime-node, loaded by the first `create`: WebGPU-only processes (and device bundles without ORT's binaries) never load it. */
let ortModule: typeof Ort | null = null;

async function loadOrt(): Promise<typeof Ort> {
  if (!ortModule) {
    try {
      const m = (await import('onnxruntime-node')) as typeof Ort & { default?: typeof Ort };
      ortModule = m.InferenceSession ? m : m.default!;
    } catch (err) {
      throw new DeviceError(`onnxruntime-node cannot be loaded here (${(err as Error).message}); use --engine webgpu`, { cause: err });
    }
  }
  return ortModule;
}

/** Protobuf field tags a ModelProto can start with (fields 1–8, 14, 20; varint or length-delimited). */
const MODEL_PROTO_FIRST_BYTES = new Set([0x08, 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72, 0xa2]);

export class OrtEncoder implements Encoder {
  private closed = false;
  /** The any-size graph's session, opened by the first `embedRegion`. */
  private regionSession: Promise<Ort.InferenceSession> | null = null;
  private constructor(
    readonly manifest: ModelManifest,
    readonly device: EncoderDevice,
    readonly onnxPath: string,
    private readonly session: Ort.InferenceSession,
    private readonly maxBatch: number,
    private readonly sessionOptions: Ort.InferenceSession.SessionOptions,
  ) {}

  /**
   * Opens a model (a path for `locateModel`, or an already located model) on a device.
   * @throws UnprocessableError when the file is not ONNX or does not match its manifest;
   *   DeviceError when the execution provider is missing or fails.
   * @example const enc = await OrtEncoder.create(await resolveModel(), { threads: 2 });
   */
  static async create(model: string | ModelLocation, options: OrtEncoderOptions = {}): Promise<OrtEncoder> {
    const location = typeof model === 'string' ? await locateModel(model) : model;
    const device = options.device ?? 'cpu';
    const threads = options.threads ?? 0;
    const maxBatch = options.maxBatch ?? 64;
    if (!['cpu', 'webgpu', 'cuda'].includes(device)) throw invalidParameter('device', "'cpu', 'webgpu' or 'cuda'", device);
    if (!Number.isInteger(threads) || threads < 0 || threads > 1024) throw invalidParameter('threads', 'integer between 0 and 1024', threads);
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 4096) throw invalidParameter('maxBatch', 'integer between 1 and 4096', maxBatch);
    const ort = await loadOrt();
    checkBackend(ort, device);
    await sniffOnnx(location.onnxPath);
    let session: Ort.InferenceSession;
    const sessionOptions: Ort.InferenceSession.SessionOptions = {
      executionProviders: [device],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    };
    try {
      session = await ort.InferenceSession.create(location.onnxPath, sessionOptions);
    } catch (err) {
      const msg = (err as Error).message;
      if (device !== 'cpu') throw new DeviceError(`cannot start onnxruntime's ${device} execution provider for ${location.onnxPath}: ${msg}`, { cause: err });
      throw new UnprocessableError(`${location.onnxPath}: onnxruntime cannot load this model: ${msg}`, { cause: err });
    }
    const encoder = new OrtEncoder(location.manifest, device, location.onnxPath, session, maxBatch, sessionOptions);
    try {
      encoder.checkSignature();
      await encoder.dryRun();
    } catch (err) {
      await session.release();
      throw err;
    }
    return encoder;
  }

  /** Tokens per tile and the token grid, when the model has a tokens output. */
  get tokenGrid(): [number, number] | undefined {
    if (!this.manifest.outputs.tokens) return undefined;
    const side = tokenGridSide(this.manifest);
    return [side, side];
  }

  async embed(pixels: Float32Array, n: number, options: EmbedOptions = {}): Promise<EmbedResult> {
    if (this.closed) throw new UnprocessableError(`encoder for ${this.manifest.name} is closed`);
    const { inputSize, embeddingDim: d } = this.manifest;
    const tileLen = 3 * inputSize * inputSize;
    if (!Number.isInteger(n) || n < 0) throw invalidParameter('n', 'non-negative integer', n);
    if (pixels.length !== n * tileLen) {
      throw invalidParameter('pixels.length', `${n} × 3 × ${inputSize} × ${inputSize} = ${n * tileLen}`, pixels.length);
    }
    const wantTokens = options.tokens === true && this.tokenGrid !== undefined;
    const grid = this.tokenGrid;
    const tokenCount = grid ? grid[0] * grid[1] : 0;
    const embeddings = new Float32Array(n * d);
    const tokens = wantTokens ? new Float32Array(n * tokenCount * d) : undefined;
    const outs = this.manifest.outputs;
    const fetches = wantTokens ? [outs.embedding, outs.tokens!] : [outs.embedding];
    for (let start = 0; start < n; start += this.maxBatch) {
      if (options.signal?.aborted) throw new CancelledError('encoding cancelled', { cause: options.signal.reason });
      const count = Math.min(this.maxBatch, n - start);
      const input = new ortModule!.Tensor('float32', pixels.subarray(start * tileLen, (start + count) * tileLen), [count, 3, inputSize, inputSize]);
      let result: Ort.InferenceSession.OnnxValueMapType;
      try {
        result = await this.session.run({ [this.manifest.inputName]: input }, fetches);
      } catch (err) {
        throw new UnprocessableError(`${this.manifest.name}: onnxruntime failed on a batch of ${count}: ${(err as Error).message}`, { cause: err });
      }
      embeddings.set(readOutput(result, outs.embedding, [count, d], this.manifest.name), start * d);
      if (tokens) tokens.set(readOutput(result, outs.tokens!, [count, tokenCount, d], this.manifest.name), start * tokenCount * d);
      for (const value of Object.values(result)) (value as Ort.Tensor).dispose?.();
    }
    return tokens ? { embeddings, tokens, tokenGrid: grid } : { embeddings };
  }

  /**
   * Encodes `n` images of `size` × `size` px (normalised NCHW f32; size a multiple of the patch
   * size) as one sequence each, through the any-size graph; one image per run, so memory follows
   * one region's tokens.
   * @throws InvalidParameterError for a size that is not a multiple of the patch size;
   *   UnprocessableError for a model without a tokens output or not written by Lamina's ViT builder.
   */
  async embedRegion(pixels: Float32Array, n: number, size: number, options: EmbedOptions = {}): Promise<EmbedResult> {
    if (this.closed) throw new UnprocessableError(`encoder for ${this.manifest.name} is closed`);
    const { patchSize: p, embeddingDim: d } = this.manifest;
    if (!Number.isInteger(size) || size < p || size % p) throw invalidParameter('size', `positive multiple of the patch size ${p}`, size);
    if (!Number.isInteger(n) || n < 0) throw invalidParameter('n', 'non-negative integer', n);
    const imageLen = 3 * size * size;
    if (pixels.length !== n * imageLen) throw invalidParameter('pixels.length', `${n} × 3 × ${size} × ${size} = ${n * imageLen}`, pixels.length);
    const wantTokens = options.tokens === true;
    if (wantTokens && !this.manifest.outputs.tokens) {
      throw new UnprocessableError(`model '${this.manifest.name}' has no patch-token output (manifest outputs.tokens); region analysis scores patch tokens`);
    }
    const session = await (this.regionSession ??= this.openRegionSession());
    const grid = size / p, tokenCount = grid * grid;
    const embeddings = new Float32Array(n * d);
    const tokens = wantTokens ? new Float32Array(n * tokenCount * d) : undefined;
    const fetches = wantTokens ? ['embedding', 'tokens'] : ['embedding'];
    for (let i = 0; i < n; i++) {
      if (options.signal?.aborted) throw new CancelledError('encoding cancelled', { cause: options.signal.reason });
      const input = new ortModule!.Tensor('float32', pixels.subarray(i * imageLen, (i + 1) * imageLen), [1, 3, size, size]);
      let result: Ort.InferenceSession.OnnxValueMapType;
      try {
        result = await session.run({ pixels: input }, fetches);
      } catch (err) {
        throw new UnprocessableError(`${this.manifest.name}: onnxruntime failed on a ${size}² region: ${(err as Error).message}`, { cause: err });
      }
      embeddings.set(readOutput(result, 'embedding', [1, d], this.manifest.name), i * d);
      if (tokens) tokens.set(readOutput(result, 'tokens', [1, tokenCount, d], this.manifest.name), i * tokenCount * d);
      for (const value of Object.values(result)) (value as Ort.Tensor).dispose?.();
    }
    return tokens ? { embeddings, tokens, tokenGrid: [grid, grid] } : { embeddings };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.session.release();
    const region = await this.regionSession?.catch(() => null);
    await region?.release();
  }

  /**
   * The any-size graph of this model: generated from its weights, cached in the model cache under
   * the hash of the fixed-size file (a changed model gets a new graph), opened on the same EP.
   */
  private async openRegionSession(): Promise<Ort.InferenceSession> {
    const bytes = await readFile(this.onnxPath);
    const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    const dir = join(modelCacheDir(), 'region-graphs');
    const path = join(dir, `${this.manifest.name.replace(/[^\w.-]/g, '_')}-${hash}.onnx`);
    let graph = await readFile(path).catch(() => null);
    if (!graph) {
      let vit;
      try {
        vit = await readVitOnnx(bytes);
      } catch (err) {
        throw new UnprocessableError(`${this.onnxPath}: region analysis on onnxruntime needs a ViT written by Lamina (lamina model import); ${(err as Error).message}`, { cause: err });
      }
      graph = Buffer.from(buildVitOnnx(vit.config, vit.weights, { dynamicSize: true, weightType: this.manifest.weightType ?? 'float32', name: this.manifest.name }));
      await mkdir(dir, { recursive: true });
      const tmp = `${path}.tmp-${process.pid}`;
      await writeFile(tmp, graph);
      await rename(tmp, path);
    }
    try {
      return await ortModule!.InferenceSession.create(graph, this.sessionOptions);
    } catch (err) {
      throw new UnprocessableError(`${path}: onnxruntime cannot load the any-size region graph: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Names and declared shapes of the graph against the manifest. */
  private checkSignature(): void {
    const m = this.manifest;
    const where = `${this.onnxPath} (manifest ${m.name})`;
    if (!this.session.inputNames.includes(m.inputName)) {
      throw new UnprocessableError(`${where}: manifest input '${m.inputName}' is not a model input; the model's inputs are ${this.session.inputNames.join(', ')}`);
    }
    if (this.session.inputNames.length !== 1) {
      throw new UnprocessableError(`${where}: the model has ${this.session.inputNames.length} inputs (${this.session.inputNames.join(', ')}); an encoder takes one image input`);
    }
    for (const [role, name] of Object.entries(m.outputs)) {
      if (name && !this.session.outputNames.includes(name)) {
        throw new UnprocessableError(`${where}: manifest output ${role}='${name}' is not a model output; the model's outputs are ${this.session.outputNames.join(', ')}`);
      }
    }
    const meta = this.session.inputMetadata?.find((v) => v.name === m.inputName);
    if (meta?.isTensor) {
      if (meta.type !== 'float32') throw new UnprocessableError(`${where}: input '${m.inputName}' is ${meta.type}, expected float32`);
      const expected = ['batch', 3, m.inputSize, m.inputSize];
      const shape = meta.shape;
      const bad = shape.length !== 4 || shape.slice(1).some((v, i) => typeof v === 'number' && v !== expected[i + 1]);
      if (bad) throw new UnprocessableError(`${where}: input '${m.inputName}' has shape [${shape.join(', ')}], manifest says [batch, 3, ${m.inputSize}, ${m.inputSize}]`);
    }
  }

  /** One zero tile through the model: output shapes must be what the manifest says. */
  private async dryRun(): Promise<void> {
    await this.embed(new Float32Array(3 * this.manifest.inputSize ** 2), 1, { tokens: true });
  }
}

function readOutput(result: Ort.InferenceSession.OnnxValueMapType, name: string, dims: number[], model: string): Float32Array {
  const t = result[name] as Ort.Tensor | undefined;
  if (!t) throw new UnprocessableError(`${model}: output '${name}' missing from the run`);
  const ok = t.dims.length === dims.length && t.dims.every((v, i) => v === dims[i]);
  if (t.type !== 'float32' || !ok) {
    throw new UnprocessableError(`${model}: output '${name}' is ${t.type} [${t.dims.join(', ')}], manifest implies float32 [${dims.join(', ')}]`);
  }
  return t.data as Float32Array;
}

/** Refuses an EP this onnxruntime-node build does not ship, before trying to start it. */
function checkBackend(ort: typeof Ort, device: EncoderDevice): void {
  if (device === 'cpu') return;
  const backends = ort.listSupportedBackends?.() ?? [];
  const entry = backends.find((b) => b.name === device);
  if (!entry) {
    throw new DeviceError(`onnxruntime-node has no '${device}' execution provider on this platform (available: ${backends.map((b) => b.name).join(', ') || 'cpu'})`);
  }
  if (!entry.bundled) {
    throw new DeviceError(`onnxruntime-node's '${device}' execution provider is not installed: its binaries are not bundled ` +
      (device === 'cuda' ? '(install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL_CUDA=v12 and a CUDA 12 runtime, or use --device cpu)' : '(use --device cpu)'));
  }
}

/** A cheap look at the file head so "this is a PNG" reads better than a protobuf parse error. */
async function sniffOnnx(path: string): Promise<void> {
  const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new UnprocessableError(`model file ${path} cannot be opened: ${err.code ?? err.message}`, { cause: err });
  });
  try {
    const head = Buffer.alloc(16);
    const { bytesRead } = await fh.read(head, 0, 16, 0);
    if (bytesRead < 2 || !MODEL_PROTO_FIRST_BYTES.has(head[0]!)) {
      const hex = [...head.subarray(0, Math.min(bytesRead, 8))].map((b) => b.toString(16).padStart(2, '0')).join(' ');
      throw new UnprocessableError(`${path} is not an ONNX model (${bytesRead === 0 ? 'empty file' : `starts with bytes ${hex}`})`);
    }
  } finally {
    await fh.close();
  }
}
