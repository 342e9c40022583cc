import { createServer, type Server } from 'node:http';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DecisionListener } from '../core/decisions.js';
import type { JobStatus } from '../jobs/Job.js';
import type { GaugeSource } from './GaugeSource.js';

/** Prometheus metrics of one process, served on /metrics. */
export class Metrics {
  readonly registry = new Registry();
  private readonly calls: Counter<'method' | 'code'>;
  private readonly latency: Histogram<'method'>;
  private server: Server | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'quota_' });
    this.calls = new Counter({
      name: 'quota_grpc_calls_total',
      help: 'gRPC calls finished, by method and status code',
      labelNames: ['method', 'code'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'quota_grpc_call_seconds',
      help: 'gRPC call latency in seconds, by method',
      labelNames: ['method'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [this.registry],
    });
  }

  /** Records one finished call; `code` is the numeric gRPC status. */
  observe(method: string, code: number, ms: number): void {
    this.calls.inc({ method, code: String(code) });
    this.latency.observe({ method }, ms / 1000);
  }

  /** Counts decisions by rule and result. TODO(metrics helper): implement. */
  readonly decisions: DecisionListener = { decided: () => undefined };

  /** Records the size of one decision batch of `store`. TODO(metrics helper): implement. */
  decisionBatch(_store: string, _items: number): void {}

  /** Registers figures read at each scrape. TODO(metrics helper): implement. */
  addGauges(_gauges: readonly GaugeSource[]): void {}

  /** Task runs and failures, read at each scrape. TODO(metrics helper): implement. */
  followJobs(_list: () => readonly JobStatus[]): void {}

  /** Serves GET /metrics on `port` (all interfaces); resolves with the bound port. */
  listen(port: number, host = '0.0.0.0'): Promise<number> {
    this.server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        () => res.writeHead(500).end(),
      );
    });
    const server = this.server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      });
    });
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}
