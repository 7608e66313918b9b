import type { Command } from '../main.ts';
import { numberFlag, parseFlags } from '../args.ts';
import { invalidParameter } from '../../errors.ts';
import { QUEUE_ROLES, type QueueRole } from '../../queue/names.ts';
import { startWorkers } from '../../queue/worker-runner.ts';
import { storageFromEnv } from '../../storage/fs-storage.ts';

const usage = 'lamina worker [--queues plan,batch,aggregate] [--concurrency N] [--ep cpu|webgpu|cuda] [--no-sandbox] [--lock-duration ms] [--stalled-interval ms]';

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
    }, usage);
    const ep = values.ep as string | undefined;
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
    console.log(`lamina worker ${process.pid}: queues ${queues.join(', ')}; data ${storage.root}; ep ${ep ?? 'per analysis'}`);
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
