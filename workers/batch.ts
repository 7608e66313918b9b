/**
 * BullMQ sandboxed processor of the `lamina-batch` queue: read, encode and (with a bank) score one
 * range of tiles. BullMQ forks a child per concurrent job and imports this file there, so the
 * encoder (ONNX Runtime, Dawn) runs outside the worker process: a native crash costs one child.
 * The child builds its own context from the environment the worker runner passes.
 */
import type { SandboxedJob } from 'bullmq';
import { connectRedis } from '../src/queue/connection.ts';
import type { BatchJobData } from '../src/queue/names.ts';
import { runBatchJob, type WorkerContext } from '../src/queue/processors.ts';
import { ProgressStore } from '../src/queue/progress-store.ts';
import { Records } from '../src/storage/records.ts';
import { storageFromEnv } from '../src/storage/fs-storage.ts';

let ctx: WorkerContext | null = null;

function contextFromEnv(): WorkerContext {
  const storage = storageFromEnv();
  const ep = process.env.LAMINA_EP;
  return {
    storage,
    records: new Records(storage),
    progress: new ProgressStore(connectRedis(process.env.REDIS_URL || undefined), process.env.LAMINA_QUEUE_PREFIX || 'lamina'),
    ep: ep === 'cpu' || ep === 'webgpu' || ep === 'cuda' ? ep : null,
    log: { info: () => undefined, warn: (m) => console.warn(m) },
  };
}

export default async function batchJob(job: SandboxedJob<BatchJobData>) {
  ctx ??= contextFromEnv();
  return runBatchJob(ctx, job);
}
