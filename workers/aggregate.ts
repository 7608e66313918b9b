/**
 * BullMQ entry of the `lamina-aggregate` queue: the parent of an analysis's batch jobs, run once
 * they have all completed — scoring, heatmap, regions, result.json.
 */
import type { Job } from 'bullmq';
import { runAggregateJob, type WorkerContext } from '../src/queue/processors.ts';
import type { AggregateJobData } from '../src/queue/names.ts';

export const aggregateProcessor = (ctx: WorkerContext) => (job: Job<AggregateJobData>) => runAggregateJob(ctx, job);
