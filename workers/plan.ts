/**
 * BullMQ entry of the `lamina-plan` queue: tissue mask and tile plan, then the analysis's flow
 * (batch jobs under an aggregate parent). Runs in the worker process; started by `lamina worker`.
 */
import type { Job } from 'bullmq';
import { runPlanJob, type WorkerContext } from '../src/queue/processors.ts';
import type { PlanJobData } from '../src/queue/names.ts';

export const planProcessor = (ctx: WorkerContext) => (job: Job<PlanJobData>) => runPlanJob(ctx, job);
