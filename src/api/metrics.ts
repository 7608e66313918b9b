import type { RequestHandler } from 'express';
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AnalysisService } from './context.ts';

/**
 * Prometheus metrics of one API process: request latency by route, queue depth per queue and state,
 * and tiles scored by all workers (from Redis) with a rate over the last scrapes.
 */
export class ApiMetrics {
  readonly registry = new Registry();
  private readonly latency: Histogram<'method' | 'route' | 'status'>;
  private samples: { t: number; n: number }[] = [];

  constructor(analyses: AnalysisService | null) {
    collectDefaultMetrics({ register: this.registry, prefix: 'lamina_' });
    this.latency = new Histogram({
      name: 'lamina_http_request_duration_seconds', help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
      registers: [this.registry],
    });
    if (!analyses) return;
    new Gauge({
      name: 'lamina_queue_jobs', help: 'Jobs per queue and state (queue depth = waiting + delayed + waiting-children)',
      labelNames: ['queue', 'state'], registers: [this.registry],
      async collect() {
        const counts = await analyses.jobCounts().catch(() => ({}));
        for (const [queue, states] of Object.entries(counts)) for (const [state, n] of Object.entries(states)) this.set({ queue, state }, n);
      },
    });
    const samples = () => this.samples;
    const setSamples = (s: { t: number; n: number }[]) => { this.samples = s; };
    new Gauge({ name: 'lamina_tiles_scored', help: 'Tiles scored by all workers since the queue was created', registers: [this.registry],
      async collect() {
        const n = await analyses.tilesScored().catch(() => NaN);
        if (Number.isFinite(n)) setSamples([...samples().filter((s) => Date.now() - s.t < 60_000), { t: Date.now(), n }]);
        this.set(n);
      } });
    new Gauge({ name: 'lamina_tiles_per_second', help: 'Tiles scored per second over the scrapes of the last minute', registers: [this.registry],
      collect() {
        const s = samples();
        this.set(s.length < 2 ? 0 : (s[s.length - 1]!.n - s[0]!.n) / ((s[s.length - 1]!.t - s[0]!.t) / 1000));
      } });
  }

  /** Times every request; the route label is the matched pattern, never the raw URL (bounded cardinality). */
  readonly observe: RequestHandler = (req, res, next) => {
    const end = this.latency.startTimer();
    res.on('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  };
}
