/**
 * `lamina worker --gpus all|0,1,…`: one worker process per GPU, each bound to its adapter through
 * LAMINA_GPU and running the WebGPU engine, all serving the same queues. A process per GPU (rather
 * than a device per GPU in one process) keeps a Dawn crash or device loss to one GPU's worker and
 * lets BullMQ's job locks and stall detection treat each GPU as an independent worker.
 *
 * The supervisor restarts a child that exits with an error or dies from a signal it did not send,
 * after a backoff that doubles per consecutive crash (reset once a child has run `stableMs`), leaves
 * a child that exited with 0 stopped, forwards SIGINT/SIGTERM, and resolves when every child is gone.
 *
 * @example
 *   const sup = new GpuSupervisor({ gpus: [0, 1], args: ['--queues', 'batch'] });
 *   process.exitCode = await sup.run();
 */
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DeviceError, invalidParameter } from '../errors.ts';
import type { AdapterEntry } from '../../kernels/gpu/gpu-context.ts';
import { checkAdapterIndex } from '../../kernels/gpu/adapter-details.ts';

/** Starts one child: the worker command line and its environment. Injected by tests. */
export type SpawnWorker = (args: string[], env: NodeJS.ProcessEnv) => ChildProcess;

export interface GpuSupervisorOptions {
  /** Adapter indexes, one child each. */
  gpus: number[];
  /** `lamina worker` arguments for every child (without `--gpus`); see {@link childWorkerArgs}. */
  args: string[];
  /** @defaultValue runs bin/lamina.js with this Node */
  spawn?: SpawnWorker;
  /** First restart delay. @defaultValue 1000 */
  minBackoffMs?: number;
  /** Largest restart delay. @defaultValue 30000 */
  maxBackoffMs?: number;
  /** A child that ran this long resets its backoff. @defaultValue 60000 */
  stableMs?: number;
  /** @defaultValue console.log */
  log?: (line: string) => void;
}

/**
 * Parses `--gpus all` or `--gpus 0,2` against Dawn's adapter list. Indexes must exist and be
 * reachable: dawn.node selects adapters by name, so of several identical GPUs only the first can be
 * chosen in one process namespace — those hosts run one container per GPU (docker-compose.yml).
 */
export function parseGpuList(raw: string, adapters: AdapterEntry[]): number[] {
  let indexes: number[];
  if (raw.trim() === 'all') indexes = adapters.map((a) => a.index);
  else {
    const parts = raw.split(',').map((s) => s.trim());
    if (!parts.length || parts.some((p) => !/^\d+$/.test(p))) throw invalidParameter('--gpus', "'all' or comma-separated adapter indexes", raw);
    indexes = parts.map(Number);
    if (new Set(indexes).size !== indexes.length) throw invalidParameter('--gpus', 'distinct adapter indexes', raw);
  }
  if (!indexes.length) throw new DeviceError('--gpus all: no WebGPU adapter found (is a Vulkan driver installed? set XDG_RUNTIME_DIR)');
  for (const index of indexes) {
    const entry = checkAdapterIndex(index, adapters);
    const first = adapters.find((a) => a.name === entry.name)!;
    if (first.index !== index) {
      throw new DeviceError(`GPU adapter ${index} (${entry.name}) has the same name as adapter ${first.index}; dawn.node selects adapters by name, so run one worker per GPU in its own container (docker-compose.yml, worker-gpu0/worker-gpu1) instead of --gpus`);
    }
  }
  return indexes;
}

/** The child's arguments: `--gpus`, `--gpu` and `--dry-run` removed, `--ep webgpu` unless an engine was given. */
export function childWorkerArgs(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--gpus' || a === '--gpu') { i++; continue; }
    if (a.startsWith('--gpus=') || a.startsWith('--gpu=') || a === '--dry-run') continue;
    out.push(a);
  }
  if (!out.some((a) => a === '--ep' || a.startsWith('--ep='))) out.push('--ep', 'webgpu');
  return out;
}

const LAMINA_BIN = fileURLToPath(new URL('../../bin/lamina.js', import.meta.url));

const defaultSpawn: SpawnWorker = (args, env) =>
  nodeSpawn(process.execPath, [LAMINA_BIN, 'worker', ...args], { env, stdio: 'inherit' });

/** Supervises one worker child per GPU; see the module comment for the restart rules. */
export class GpuSupervisor {
  private readonly children = new Map<number, ChildProcess>();
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private readonly crashes = new Map<number, number>();
  private stopping = false;
  private resolveDone: ((code: number) => void) | undefined;
  private worstCode = 0;
  /** Children started so far, restarts included (for logs and tests). */
  started = 0;

  constructor(private readonly opts: GpuSupervisorOptions) {
    if (!opts.gpus.length) throw invalidParameter('gpus', 'at least one adapter index', opts.gpus);
  }

  /** Starts every child; resolves with 0 when all stopped after a signal, else the worst exit code. */
  run(): Promise<number> {
    const done = new Promise<number>((resolve) => { this.resolveDone = resolve; });
    for (const gpu of this.opts.gpus) this.startChild(gpu);
    return done;
  }

  /** Forwards `signal` to every child and stops restarting them. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.stopping = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const child of this.children.values()) child.kill(signal);
    this.maybeDone();
  }

  private log(line: string): void { (this.opts.log ?? console.log)(line); }

  private startChild(gpu: number): void {
    const env = { ...process.env, LAMINA_GPU: String(gpu) };
    const child = (this.opts.spawn ?? defaultSpawn)(this.opts.args, env);
    this.started++;
    const startedAt = Date.now();
    this.children.set(gpu, child);
    this.log(`lamina worker --gpus: GPU ${gpu} worker started (pid ${child.pid ?? '?'})`);
    child.once('exit', (code, signal) => {
      this.children.delete(gpu);
      if (this.stopping) { this.maybeDone(); return; }
      if (code === 0) {
        this.log(`lamina worker --gpus: GPU ${gpu} worker exited cleanly; not restarted`);
        this.maybeDone();
        return;
      }
      this.worstCode = Math.max(this.worstCode, code ?? 1);
      const crashes = Date.now() - startedAt >= (this.opts.stableMs ?? 60_000) ? 1 : (this.crashes.get(gpu) ?? 0) + 1;
      this.crashes.set(gpu, crashes);
      const delay = Math.min(this.opts.maxBackoffMs ?? 30_000, (this.opts.minBackoffMs ?? 1000) * 2 ** (crashes - 1));
      this.log(`lamina worker --gpus: GPU ${gpu} worker ${signal ? `killed by ${signal}` : `exited with ${code}`}; restarting in ${delay} ms (crash ${crashes})`);
      this.timers.set(gpu, setTimeout(() => { this.timers.delete(gpu); if (!this.stopping) this.startChild(gpu); }, delay));
    });
  }

  private maybeDone(): void {
    if (this.children.size || this.timers.size) return;
    this.resolveDone?.(this.stopping ? 0 : this.worstCode);
  }
}
