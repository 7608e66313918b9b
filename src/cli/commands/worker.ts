import type { Command } from '../main.ts';
import { numberFlag, parseFlags } from '../args.ts';
import { invalidParameter } from '../../errors.ts';
import { QUEUE_ROLES, type QueueRole } from '../../queue/names.ts';
import { startWorkers } from '../../queue/worker-runner.ts';
import { storageFromEnv } from '../../storage/fs-storage.ts';
import { applyGpuFlag } from '../gpu-flag.ts';
import { GpuSupervisor, childWorkerArgs, parseGpuList } from '../../queue/gpu-supervisor.ts';

const usage = 'lamina worker [--queues plan,batch,aggregate] [--concurrency N] [--ep cpu|webgpu|cuda] [--no-sandbox] [--lock-duration ms] [--stalled-interval ms] [--gpu N | --gpus all|0,1,… [--dry-run]]';

/** Parses `--queues plan,batch` into queue roles. */
export function parseQueues(raw: string | undefined): QueueRole[] {
  if (!raw) return [...QUEUE_ROLES];
  const roles = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const r of roles) if (!QUEUE_ROLES.includes(r as QueueRole)) throw invalidParameter('--queues', `comma-separated list of ${QUEUE_ROLES.join(', ')}`, raw);
  return roles as QueueRole[];
}

export const command: Command = {
  summary: 'Process queued analyses (Redis from REDIS_URL, storage in LAMINA_DATA_DIR) until stopped',
  usage,
  async run(argv) {
    const { values } = parseFlags(argv, {
      queues: { type: 'string' },
      concurrency: { type: 'string' },
      ep: { type: 'string' },
      'no-sandbox': { type: 'boolean' },
      'lock-duration': { type: 'string' },
      'stalled-interval': { type: 'string' },
      gpu: { type: 'string' },
      gpus: { type: 'string' },
      'dry-run': { type: 'boolean' },
    }, usage);
    if (values.gpus !== undefined) return superviseGpus(argv, values.gpus as string, values.gpu !== undefined, values['dry-run'] === true);
    if (values['dry-run']) throw invalidParameter('--dry-run', 'to be given with --gpus', true);
    // Choosing a GPU means running the WebGPU engine on it unless --ep says otherwise.
    const gpu = await applyGpuFlag(values.gpu as string | undefined);
    const ep = (values.ep as string | undefined) ?? (gpu !== undefined ? 'webgpu' : undefined);
    if (ep !== undefined && ep !== 'cpu' && ep !== 'webgpu' && ep !== 'cuda') throw invalidParameter('--ep', "one of 'cpu', 'webgpu', 'cuda'", ep);
    const queues = parseQueues(values.queues as string | undefined);
    const storage = storageFromEnv();
    const running = await startWorkers({
      storage,
      redisUrl: process.env.REDIS_URL || undefined,
      queues,
      concurrency: numberFlag('concurrency', values.concurrency as string | undefined, 1, 1, 256),
      ep: (ep as 'cpu' | 'webgpu' | 'cuda' | undefined) ?? null,
      sandbox: !values['no-sandbox'],
      lockDurationMs: numberFlag('lock-duration', values['lock-duration'] as string | undefined, Number(process.env.LAMINA_LOCK_DURATION_MS) || 30_000, 500, 3_600_000),
      stalledIntervalMs: numberFlag('stalled-interval', values['stalled-interval'] as string | undefined, Number(process.env.LAMINA_STALLED_INTERVAL_MS) || 30_000, 200, 3_600_000),
    });
    console.log(`lamina worker ${process.pid}: queues ${queues.join(', ')}; data ${storage.root}; ep ${ep ?? 'per analysis'}${gpu !== undefined ? `; GPU ${gpu}` : ''}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    console.log(`lamina worker ${process.pid}: finishing active jobs…`);
    await running.close();
    console.log(`lamina worker ${process.pid}: stopped`);
    // Connections BullMQ duplicated internally may still be retrying an unreachable Redis.
    process.exit(0);
  },
};

/** `--gpus`: one child worker per listed adapter (LAMINA_GPU set, WebGPU engine), supervised. */
async function superviseGpus(argv: string[], raw: string, hasGpu: boolean, dryRun: boolean): Promise<number> {
  if (hasGpu) throw invalidParameter('--gpu', 'not to be given with --gpus', true);
  const { listAdapters } = await import('../../../kernels/gpu/gpu-context.ts');
  const gpus = parseGpuList(raw, await listAdapters());
  const args = childWorkerArgs(argv);
  if (dryRun) {
    for (const g of gpus) console.log(`LAMINA_GPU=${g} lamina worker ${args.join(' ')}`);
    return 0;
  }
  const supervisor = new GpuSupervisor({ gpus, args });
  process.once('SIGINT', () => supervisor.stop('SIGINT'));
  process.once('SIGTERM', () => supervisor.stop('SIGTERM'));
  const code = await supervisor.run();
  console.log(`lamina worker --gpus: all ${gpus.length} GPU worker(s) stopped`);
  return code;
}
