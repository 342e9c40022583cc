import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DecisionListener } from '../core/decisions.js';
import type { JobStatus } from '../jobs/Job.js';
import { DecisionCounts } from './DecisionCounts.js';
import type { GaugeSource } from './GaugeSource.js';
import { registerTaskMetrics } from './registerTaskMetrics.js';

/** Bounds of the batch-size histogram: a batch holds at most 1024 decisions. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** Prometheus metrics of one process, served on /metrics. */
export class Metrics {
  readonly registry = new Registry();
  private readonly calls: Counter<'method' | 'code'>;
  private readonly itemErrors: Counter<'method' | 'code'>;
  private readonly latency: Histogram<'method'>;
  private readonly batchSizes: Histogram<'store'>;
  // Children looked up once per label values: prom-client builds and hashes a label object on
  // every call otherwise.
  private readonly callCounters = new Map<string, Map<number, Counter.Internal>>();
  private readonly itemErrorCounters = new Map<string, Map<number, Counter.Internal>>();
  private readonly latencies = new Map<string, Histogram.Internal<'method'>>();
  private readonly batchHistograms = new Map<string, Histogram.Internal<'store'>>();
  private readonly counts = new DecisionCounts();
  private server: Server | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'quota_' });
    this.calls = new Counter({
      name: 'quota_grpc_calls_total',
      help: 'gRPC calls finished, by method and status code',
      labelNames: ['method', 'code'],
      registers: [this.registry],
    });
    this.itemErrors = new Counter({
      name: 'quota_batch_item_errors_total',
      help: 'Checks of batch calls (CheckLimits) answered with an error, by method and status code',
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
    const counts = this.counts;
    new Counter({
      name: 'quota_decisions_total',
      help: 'Decisions answered, by source, rule ("*": whole calls) and result; replays not counted',
      labelNames: ['source', 'rule', 'result'],
      registers: [this.registry],
      // The hot path counts in DecisionCounts; the series are written whole at each scrape.
      collect() {
        this.reset();
        for (const c of counts.counts()) {
          this.inc({ source: c.source, rule: c.rule, result: c.result }, c.value);
        }
      },
    });
    this.batchSizes = new Histogram({
      name: 'quota_decision_batch_size',
      help: 'Decisions per batch sent to the database, by store',
      labelNames: ['store'],
      buckets: BATCH_BUCKETS,
      registers: [this.registry],
    });
  }

  /** Records one finished call; `code` is the numeric gRPC status. */
  observe(method: string, code: number, ms: number): void {
    const byCode = child(this.callCounters, method, () => new Map<number, Counter.Internal>());
    child(byCode, code, () => this.calls.labels(method, String(code))).inc();
    child(this.latencies, method, () => this.latency.labels(method)).observe(ms / 1000);
  }

  /** Counts a check of a batch call answered with an error; `code` is the numeric gRPC status. */
  itemFailed(method: string, code: number): void {
    const byCode = child(this.itemErrorCounters, method, () => new Map<number, Counter.Internal>());
    child(byCode, code, () => this.itemErrors.labels(method, String(code))).inc();
  }

  /** Counts decisions by rule and result (see DecisionCounts). */
  readonly decisions: DecisionListener = this.counts;

  /** Records the size of one decision batch of `store`. */
  decisionBatch(store: string, items: number): void {
    child(this.batchHistograms, store, () => this.batchSizes.labels(store)).observe(items);
  }

  /**
   * Registers figures read at each scrape. Sources of one name (one per capability, e.g. the
   * decision queue depth) become one metric, and must agree on labels and kind. A source whose
   * read throws is left out of that scrape rather than failing it.
   */
  addGauges(gauges: readonly GaugeSource[]): void {
    const byName = new Map<string, GaugeSource[]>();
    for (const g of gauges) byName.set(g.name, [...(byName.get(g.name) ?? []), g]);
    for (const [name, sources] of byName) {
      const first = sources[0]!;
      const labelNames = first.labelNames ?? [];
      const kind = first.kind ?? 'gauge';
      for (const s of sources) {
        if ((s.kind ?? 'gauge') !== kind || String(s.labelNames ?? []) !== String(labelNames)) {
          throw new Error(`metric ${name}: its sources differ in labels or kind`);
        }
      }
      const config = { name, help: first.help, labelNames, registers: [this.registry] };
      if (kind === 'counter') {
        new Counter({
          ...config,
          collect() {
            this.reset();
            readEach(sources, (labels, value) => this.inc(labels ?? {}, value));
          },
        });
      } else {
        new Gauge({
          ...config,
          collect() {
            this.reset();
            readEach(sources, (labels, value) => this.set(labels ?? {}, value));
          },
        });
      }
    }
  }

  /** Task runs, failures and durations, read from `list` at each scrape. Call once. */
  followJobs(list: () => readonly JobStatus[]): void {
    registerTaskMetrics(this.registry, list);
  }

  /** Serves GET /metrics on `port` (all interfaces); resolves with the bound port. */
  listen(port: number, host = '0.0.0.0'): Promise<number> {
    this.server = createServer((req, res) => {
      if (req.url?.split('?')[0] !== '/metrics') {
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

/** Hands each reading of `sources` to `take`; a source whose read throws gives none. */
function readEach(
  sources: readonly GaugeSource[],
  take: (labels: Readonly<Record<string, string>> | undefined, value: number) => void,
): void {
  for (const source of sources) {
    try {
      for (const { labels, value } of source.read()) take(labels, value);
    } catch {
      // A figure that cannot be read now is absent from this scrape; the rest answer.
    }
  }
}

/** The metric child cached under `key` in `cache`, made by `make` the first time. */
function child<K, C>(cache: Map<K, C>, key: K, make: () => C): C {
  let found = cache.get(key);
  if (found === undefined) {
    found = make();
    cache.set(key, found);
  }
  return found;
}
