import { EventEmitter } from 'node:events';
import { QueueEvents } from 'bullmq';
import { connectRedis } from './connection.ts';
import { analysisOfJob, QUEUE_NAMES } from './names.ts';

/**
 * Turns BullMQ's queue events (Redis streams, so they reach every API process) into one
 * "analysis <id> may have changed" notification. QueueEvents needs a dedicated connection each.
 */
export class AnalysisWatcher {
  private readonly emitter = new EventEmitter();
  private readonly events: QueueEvents[];
  private readonly connections: ReturnType<typeof connectRedis>[] = [];

  constructor(redisUrl: string | undefined, prefix: string) {
    this.emitter.setMaxListeners(0);
    this.events = Object.values(QUEUE_NAMES).map((name) => {
      const connection = connectRedis(redisUrl);
      this.connections.push(connection);
      const qe = new QueueEvents(name, { connection, prefix });
      for (const ev of ['active', 'progress', 'completed', 'failed', 'removed'] as const) {
        qe.on(ev, ({ jobId }: { jobId: string }) => this.notify(analysisOfJob(jobId)));
      }
      qe.on('error', () => undefined);
      return qe;
    });
  }

  /** Resolves once every stream reader is connected (tests wait for it so no event is missed). */
  async ready(): Promise<void> {
    await Promise.all(this.events.map((e) => e.waitUntilReady()));
  }

  notify(analysisId: string | null): void {
    if (analysisId) this.emitter.emit(analysisId);
  }

  watch(analysisId: string, listener: () => void): () => void {
    this.emitter.on(analysisId, listener);
    return () => this.emitter.off(analysisId, listener);
  }

  async close(): Promise<void> {
    await Promise.all(this.events.map((e) => e.close()));
    this.disconnect();
  }

  /** Drops the connections at once (a close that cannot reach Redis). */
  disconnect(): void {
    for (const c of this.connections) c.disconnect();
  }
}
