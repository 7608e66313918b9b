/**
 * A WebGPU device with what Lamina's kernels need, shared by every kernel in a process:
 * adapter choice by index (`--gpu N` / LAMINA_GPU), the optional features turned on when the
 * adapter has them (shader-f16, subgroups, chromium-experimental-subgroup-matrix, timestamp-query),
 * the adapter's largest limits, a buffer pool, a pipeline cache, readback helpers and a timer.
 *
 * @example
 *   const ctx = await GpuContext.create({ adapterIndex: 0 });
 *   const buf = ctx.upload(new Float32Array([1, 2, 3]), GPUBufferUsage.STORAGE);
 *   const back = new Float32Array(await ctx.read(buf));
 *   await ctx.destroy();
 */
import { DeviceError, invalidParameter, InvalidParameterError } from '../../src/errors.ts';
import { dawnInstance } from './dawn.ts';
import { BufferPool } from './buffer-pool.ts';
import { GpuTimer } from './gpu-timer.ts';

/** How to pick and set up the device. */
export interface GpuContextOptions {
  /** Index into {@link listAdapters}; @defaultValue LAMINA_GPU, else the default high-performance adapter */
  adapterIndex?: number;
  /** Dawn backend ('vulkan', 'metal', 'd3d12', 'null', …); @defaultValue the platform's default */
  backend?: string;
  /** Extra Dawn toggles to enable, after {@link DEFAULT_TOGGLES}. */
  enableToggles?: string[];
  /**
   * Keep Dawn's robustness transform (index clamping on every storage and workgroup access).
   * @defaultValue false, unless LAMINA_GPU_ROBUST=1
   */
  robust?: boolean;
  /** Turn off optional features (to test the portable paths on a capable GPU). @defaultValue [] */
  disableFeatures?: GPUFeatureName[];
}

/**
 * Dawn toggles every context gets: unsafe APIs (needed for chromium-experimental-subgroup-matrix),
 * shader-f16 on NVIDIA's Vulkan driver (off by default in Dawn), and exact timestamps.
 */
export const DEFAULT_TOGGLES = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'];

/** One adapter as Dawn enumerates it. */
export interface AdapterEntry { index: number; backend: string; name: string }

/** What a kernel asks before choosing a code path. */
export interface GpuCapabilities {
  /** A software adapter (lavapipe, SwiftShader): compiles slowly, so kernels avoid unrolling. */
  cpu: boolean;
  shaderF16: boolean;
  subgroups: boolean;
  subgroupMatrix: boolean;
  timestampQuery: boolean;
  /** Subgroup size range; a fast path that bakes the size in needs min === max. */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  /** The adapter's supported subgroup-matrix shapes and types. */
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
}

export interface SubgroupMatrixConfig {
  componentType: string; resultComponentType: string; M: number; N: number; K: number;
}

const OPTIONAL_FEATURES: GPUFeatureName[] = [
  'shader-f16', 'subgroups', 'timestamp-query', 'chromium-experimental-subgroup-matrix' as GPUFeatureName,
];
const WANTED_LIMITS = [
  'maxComputeWorkgroupStorageSize', 'maxStorageBufferBindingSize', 'maxBufferSize',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

/**
 * Toggles from LAMINA_DAWN_TOGGLES (comma-separated Dawn toggle names, e.g. `disable_robustness`):
 * for A/B measurements of Dawn's own costs on a real GPU without a code change.
 */
function envToggles(): string[] {
  const raw = process.env.LAMINA_DAWN_TOGGLES?.trim();
  if (!raw) return [];
  const names = raw.split(',').map((x) => x.trim()).filter(Boolean);
  for (const n of names) if (!/^[a-z0-9_]+$/.test(n)) throw new InvalidParameterError(`LAMINA_DAWN_TOGGLES: '${n}' is not a Dawn toggle name (lower case, digits and underscores)`);
  return names;
}

/**
 * Dawn's robustness transform clamps every storage and workgroup index in our shaders. On the H200
 * it halved the flash-attention kernel (75.8 → 35.8 TFLOP/s at S = 16,384; docs/benchmarks.md).
 * Our shaders are our own (no user WGSL runs here), and their tests poison guard elements around
 * every output, so an out-of-bounds write shows up there instead of being silently clamped.
 */
function robustnessToggles(options: GpuContextOptions): string[] {
  const robust = options.robust ?? process.env.LAMINA_GPU_ROBUST === '1';
  return robust ? [] : ['disable_robustness'];
}

function dawnFlags(options: GpuContextOptions, adapterName?: string): string[] {
  const flags = [
    `enable-dawn-features=${[...DEFAULT_TOGGLES, ...robustnessToggles(options), ...(options.enableToggles ?? []), ...envToggles()].join(',')}`,
    'disable-dawn-features=timestamp_quantization',
  ];
  if (options.backend) flags.push(`backend=${options.backend}`);
  if (adapterName) flags.push(`adapter=${adapterName}`);
  return flags;
}

/**
 * Every adapter Dawn finds, in its order. dawn.node has no enumeration call; it lists the adapters
 * in the error it gives for an adapter name that matches none, so that list is parsed here.
 */
export async function listAdapters(options: Pick<GpuContextOptions, 'backend'> = {}): Promise<AdapterEntry[]> {
  const gpu = dawnInstance(dawnFlags(options, '\u0001lamina-list-adapters'));
  try {
    await gpu.requestAdapter();
  } catch (err) {
    const text = String((err as Error)?.message ?? err);
    const out: AdapterEntry[] = [];
    for (const m of text.matchAll(/\* backend: '([^']*)', name: '([^']*)'/g)) out.push({ index: out.length, backend: m[1]!, name: m[2]! });
    return out;
  }
  return [];
}

/** The adapter index from LAMINA_GPU, if set. */
export function adapterIndexFromEnv(): number | undefined {
  const raw = process.env.LAMINA_GPU;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw invalidParameter('LAMINA_GPU', 'non-negative integer', raw);
  return n;
}

export class GpuContext {
  readonly pool: BufferPool;
  private timerInstance: GpuTimer | undefined;
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private lostReason: string | undefined;

  private constructor(
    readonly device: GPUDevice,
    readonly adapterInfo: { vendor: string; architecture: string; device: string; description: string; backend: string },
    readonly capabilities: GpuCapabilities,
    /** Dawn toggles beyond {@link DEFAULT_TOGGLES} (robustness off, LAMINA_DAWN_TOGGLES). */
    readonly extraToggles: string[] = [],
  ) {
    this.pool = new BufferPool(device);
    void device.lost.then((info) => { this.lostReason = `${info.reason}: ${info.message}`; });
  }

  /** Opens an adapter and a device with every optional feature it has and its largest limits. */
  static async create(options: GpuContextOptions = {}): Promise<GpuContext> {
    const index = options.adapterIndex ?? adapterIndexFromEnv();
    let name: string | undefined;
    if (index !== undefined) {
      const adapters = await listAdapters(options);
      const entry = adapters[index];
      if (!entry) {
        throw new DeviceError(`GPU adapter ${index} does not exist; found ${adapters.length}: ${adapters.map((a) => `${a.index} ${a.name} (${a.backend})`).join(', ') || 'none'}`);
      }
      // dawn.node picks the first adapter whose name contains the given one: identical GPUs
      // cannot be told apart by name, so only the first of a run of equal names is reachable.
      const first = adapters.find((a) => a.name === entry.name);
      if (first && first.index !== index) {
        throw new DeviceError(`GPU adapter ${index} (${entry.name}) has the same name as adapter ${first.index}; dawn.node selects adapters by name, so run one process per GPU with the driver restricted to it`);
      }
      name = entry.name;
    }
    const gpu = dawnInstance(dawnFlags(options, name));
    let adapter: GPUAdapter | null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    } catch (err) {
      throw new DeviceError(`no WebGPU adapter: ${(err as Error).message}`, { cause: err });
    }
    if (!adapter) throw new DeviceError('no WebGPU adapter found (is a Vulkan driver installed? set XDG_RUNTIME_DIR)');
    const disabled = new Set(options.disableFeatures ?? []);
    const features = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f));
    const requiredLimits: Record<string, number> = {};
    for (const k of WANTED_LIMITS) requiredLimits[k] = (adapter.limits as unknown as Record<string, number>)[k]!;
    let device: GPUDevice;
    try {
      device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits, label: 'lamina' });
    } catch (err) {
      throw new DeviceError(`could not open a device on ${adapter.info.device}: ${(err as Error).message}`, { cause: err });
    }
    const info = adapter.info as GPUAdapterInfo & { subgroupMatrixConfigs?: SubgroupMatrixConfig[]; backend?: string };
    const has = (f: string) => features.includes(f as GPUFeatureName);
    const capabilities: GpuCapabilities = {
      cpu: /llvmpipe|lavapipe|swiftshader|software/i.test(`${info.device} ${info.description} ${info.architecture}`),
      shaderF16: has('shader-f16'),
      subgroups: has('subgroups'),
      subgroupMatrix: has('chromium-experimental-subgroup-matrix'),
      timestampQuery: has('timestamp-query'),
      subgroupMinSize: info.subgroupMinSize ?? 0,
      subgroupMaxSize: info.subgroupMaxSize ?? 0,
      subgroupMatrixConfigs: has('chromium-experimental-subgroup-matrix')
        ? [...(info.subgroupMatrixConfigs ?? [])].map((c) => ({ componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K }))
        : [],
    };
    return new GpuContext(device, {
      vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
      backend: options.backend ?? 'default',
    }, capabilities, [...robustnessToggles(options), ...(options.enableToggles ?? []), ...envToggles()]);
  }

  /** A short description for logs and benchmark headers. */
  describe(): string {
    const c = this.capabilities;
    const feats = [c.shaderF16 && 'f16', c.subgroups && `subgroups ${c.subgroupMinSize}-${c.subgroupMaxSize}`, c.subgroupMatrix && `subgroup-matrix ${c.subgroupMatrixConfigs.map((m) => `${m.componentType}→${m.resultComponentType} ${m.M}x${m.N}x${m.K}`).join(' ')}`, c.timestampQuery && 'timestamps'].filter(Boolean);
    const extra = this.extraToggles;
    return `${this.adapterInfo.description || this.adapterInfo.device || this.adapterInfo.vendor} [${feats.join(', ')}]${extra.length ? ` toggles ${extra.join(',')}` : ''}`;
  }

  /** Throws when the device was lost (driver reset, destroy). */
  checkAlive(): void {
    if (this.lostReason !== undefined) throw new DeviceError(`GPU device lost (${this.lostReason})`);
  }

  /**
   * A compute pipeline for `code`, compiled once per `key`. Compilation errors become a
   * DeviceError carrying Dawn's messages with line numbers.
   */
  pipeline(key: string, code: string, entryPoint = 'main'): Promise<GPUComputePipeline> {
    let p = this.pipelines.get(key);
    if (!p) {
      p = this.compile(key, code, entryPoint);
      this.pipelines.set(key, p);
      p.catch(() => this.pipelines.delete(key));
    }
    return p;
  }

  private async compile(key: string, code: string, entryPoint: string): Promise<GPUComputePipeline> {
    this.checkAlive();
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code, label: key });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      await this.device.popErrorScope();
      throw new DeviceError(`WGSL for ${key} does not compile: ${errors.map((m) => `line ${m.lineNum}:${m.linePos} ${m.message}`).join('; ')}`);
    }
    try {
      const pipeline = await this.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint }, label: key });
      const err = await this.device.popErrorScope();
      if (err) throw new DeviceError(`pipeline ${key}: ${err.message}`);
      return pipeline;
    } catch (err) {
      if (err instanceof DeviceError) throw err;
      await this.device.popErrorScope().catch(() => undefined);
      throw new DeviceError(`pipeline ${key}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A new buffer holding `data` (size rounded up to 4 bytes); COPY_DST and COPY_SRC are added. */
  upload(data: ArrayBufferView, usage: GPUBufferUsageFlags, label = 'lamina-upload'): GPUBuffer {
    const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
    const buffer = this.device.createBuffer({ size, usage: usage | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC, label, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    return buffer;
  }

  /** Copies `byteLength` bytes of `buffer` (which needs COPY_SRC) back to the host. */
  async read(buffer: GPUBuffer, byteOffset = 0, byteLength = buffer.size - byteOffset): Promise<ArrayBuffer> {
    this.checkAlive();
    const aligned = Math.ceil(byteLength / 4) * 4;
    const staging = this.pool.acquire(aligned, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'lamina-readback');
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, byteOffset, staging, 0, aligned);
    this.device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, aligned);
      const out = staging.getMappedRange(0, aligned).slice(0, byteLength);
      staging.unmap();
      return out;
    } finally {
      this.pool.release(staging);
    }
  }

  /** Resolves when the GPU has finished everything submitted so far. */
  async sync(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    this.checkAlive();
  }

  /** A timestamp-query timer (needs the timestamp-query feature). */
  get timer(): GpuTimer {
    if (!this.capabilities.timestampQuery) throw new DeviceError(`${this.describe()} has no timestamp-query feature`);
    this.timerInstance ??= new GpuTimer(this.device);
    return this.timerInstance;
  }

  /** Waits for the queue to drain, frees pooled buffers and destroys the device. */
  async destroy(): Promise<void> {
    if (this.lostReason === undefined) await this.device.queue.onSubmittedWorkDone().catch(() => undefined);
    this.timerInstance?.destroy();
    this.pool.destroy();
    this.device.destroy();
  }
}
